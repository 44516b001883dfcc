/**
 * The configuration schema: the single source of truth for validation,
 * defaults and the TypeScript type of the config (CONTRACT section 2).
 * `errorMessage` on a schema replaces TypeBox's generic text in
 * `jotgate check` output.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox'

export const DURATION_PATTERN = '^[0-9]+(ms|s|m|h|d)$'

/** `30s`, `10m`, `7d`, `250ms`, or an integer number of seconds. */
const Duration = (defaultValue?: string) => Type.Union([
  Type.String({ pattern: DURATION_PATTERN }),
  Type.Integer({ minimum: 0 })
], {
  errorMessage: 'must be a duration like 30s, 10m, 7d or a whole number of seconds',
  ...(defaultValue === undefined ? {} : { default: defaultValue })
})

const strict = { additionalProperties: false, errorMessage: undefined }
const obj = <T extends Record<string, TSchema>>(props: T, opts: Record<string, unknown> = {}) =>
  Type.Object(props, { ...strict, ...opts })

const HostPort = obj({
  host: Type.String({ minLength: 1 }),
  port: Type.Integer({ minimum: 1, maximum: 65535 })
})

export const ALGORITHMS = [
  'HS256', 'HS384', 'HS512',
  'RS256', 'RS384', 'RS512',
  'PS256', 'PS384', 'PS512',
  'ES256', 'ES384', 'ES512',
  'EdDSA'
] as const
export type Algorithm = typeof ALGORITHMS[number]

const AlgorithmSchema = Type.Union(ALGORITHMS.map((a) => Type.Literal(a)), {
  errorMessage: `must be one of ${ALGORITHMS.join(', ')}`
})

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const
const MethodSchema = Type.Union(HTTP_METHODS.map((m) => Type.Literal(m)), {
  errorMessage: `must be one of ${HTTP_METHODS.join(', ')}`
})

const Path = Type.String({ pattern: '^/', errorMessage: 'must be a path starting with /' })
const StringList = Type.Array(Type.String({ minLength: 1 }))

export const KeySchema = obj({
  /** Key id, the JWS `kid` header of the tokens this key signs. */
  kid: Type.String({ minLength: 1, maxLength: 256 }),
  /** The one algorithm this key is used with (RFC 8725 section 3.1). */
  alg: AlgorithmSchema,
  /** Exactly one key signs the tokens jotgate issues. */
  sign: Type.Optional(Type.Boolean()),
  privateKeyFile: Type.Optional(Type.String({ minLength: 1 })),
  publicKeyFile: Type.Optional(Type.String({ minLength: 1 })),
  /** HMAC secret: the UTF-8 bytes of this string. */
  secret: Type.Optional(Type.String()),
  /** HMAC secret: base64 or base64url of the raw bytes. */
  secretBase64: Type.Optional(Type.String()),
  /** HMAC secret: the raw bytes of this file. */
  secretFile: Type.Optional(Type.String({ minLength: 1 }))
})
export type KeyConfig = Static<typeof KeySchema>

export const TrustedIssuerSchema = obj({
  issuer: Type.String({ minLength: 1 }),
  jwksUri: Type.Optional(Type.String({ minLength: 1 })),
  discovery: Type.Optional(Type.Boolean()),
  audience: Type.Optional(StringList),
  algorithms: Type.Array(AlgorithmSchema, { minItems: 1, default: ['RS256'] }),
  /** How long fetched keys are used before a background refresh. */
  cacheTtl: Duration('10m'),
  /** How long cached keys keep working while the provider is unreachable. */
  maxStale: Duration('24h'),
  /** Minimum time between two fetches caused by unknown kids. */
  cooldown: Duration('30s'),
  fetchTimeout: Duration('5s')
})
export type TrustedIssuerConfig = Static<typeof TrustedIssuerSchema>

export const RequireSchema = obj({
  /** Claim `roles` (array or string) holds any of these. */
  roles: Type.Optional(StringList),
  /** Claim `scope` (space-separated) or `scp` holds all of these. */
  scopes: Type.Optional(StringList),
  /** Claim `azp` is one of these. */
  clients: Type.Optional(StringList),
  /** Each claim (a name or a dotted path) equals this JSON value. */
  claims: Type.Optional(Type.Record(Type.String({ minLength: 1 }), Type.Unknown()))
})

/**
 * Where a token may come from besides `Authorization: Bearer` (always
 * read). Each source is opt-in; a request presenting tokens through more
 * than one source is refused (401 JOTGATE_TOKEN_AMBIGUOUS).
 */
export const TokenSourcesSchema = obj({
  /** Read the token from this cookie (browsers). Unsafe methods and WebSocket upgrades then need a trusted `Origin` (CSRF). */
  cookie: Type.Optional(obj({ name: Type.String({ minLength: 1, default: 'jotgate_access' }) })),
  /** Read the token from this query parameter (WebSocket clients that cannot set headers); removed before forwarding. */
  query: Type.Optional(obj({ name: Type.String({ minLength: 1, default: 'access_token' }) }))
})
export type TokenSourcesConfig = Static<typeof TokenSourcesSchema>

/** Cross-origin resource sharing, answered by the gateway through @fastify/cors. */
export const CorsSchema = obj({
  /** Allowed origins, exactly `scheme://host[:port]`; `*` allows any (never with credentials). Empty: CORS off. */
  origins: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
  /** Send `Access-Control-Allow-Credentials: true` (cookies, Authorization from browsers). */
  credentials: Type.Boolean({ default: false }),
  /** Request headers a browser may send (`Access-Control-Allow-Headers`). */
  headers: Type.Array(Type.String({ minLength: 1 }), { default: ['Authorization', 'Content-Type'] }),
  /** Response headers scripts may read (`Access-Control-Expose-Headers`). */
  exposeHeaders: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
  methods: Type.Array(MethodSchema, { minItems: 1, default: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] }),
  /** How long a browser may cache a preflight answer. */
  maxAge: Duration('10m')
})
export type CorsConfig = Static<typeof CorsSchema>

export const RouteSchema = obj({
  /** Path prefix matched on segment boundaries. */
  path: Path,
  upstream: Type.String({ minLength: 1 }),
  auth: Type.Union([Type.Literal('none'), Type.Literal('optional'), Type.Literal('required')], {
    default: 'required', errorMessage: 'must be one of none, optional, required'
  }),
  /** Replaces the matched prefix before forwarding. */
  rewrite: Type.Optional(Path),
  methods: Type.Optional(Type.Array(MethodSchema, { minItems: 1 })),
  require: Type.Optional(RequireSchema),
  /** Header -> claim, added to `claimHeaders` for this route. */
  headers: Type.Optional(Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1 }))),
  forwardAuthorization: Type.Boolean({ default: false }),
  /** Accept WebSocket upgrades; the socket is closed when its token expires or is revoked. */
  websocket: Type.Boolean({ default: false }),
  /** Replaces `tokens.sources` for this route (`{}`: Authorization only). */
  tokenSources: Type.Optional(TokenSourcesSchema),
  /** Replaces the gateway's `cors` for this route (`origins: []`: CORS off). */
  cors: Type.Optional(CorsSchema)
})
export type RouteConfig = Static<typeof RouteSchema>

const ClientSchema = obj({
  accessTtl: Type.Optional(Duration()),
  refreshTtl: Type.Optional(Duration()),
  /** Logins of this client always get their tokens as cookies too (needs `auth.cookies`). */
  cookies: Type.Optional(Type.Boolean())
})

/**
 * Login sets the tokens as cookies when the body asks (`cookie: true`), the
 * client is configured with `cookies: true`, or `always` is true. The access
 * cookie is named by `tokens.sources.cookie.name`.
 */
const AuthCookiesSchema = obj({
  always: Type.Boolean({ default: false }),
  /** The refresh-token cookie; its Path is `auth.basePath`, so only the token endpoints see it. */
  refreshName: Type.String({ minLength: 1, default: 'jotgate_refresh' }),
  secure: Type.Boolean({ default: true }),
  sameSite: Type.Union([Type.Literal('strict'), Type.Literal('lax')], { default: 'strict', errorMessage: 'must be strict or lax' }),
  /** Path of the access cookie. */
  path: Type.String({ pattern: '^/', default: '/', errorMessage: 'must be a path starting with /' }),
  domain: Type.Optional(Type.String({ minLength: 1 }))
})

const DelegateSchema = obj({
  /** Login URL of the legacy service; receives `{username, password}` as JSON. */
  url: Type.String({ minLength: 1 }),
  timeout: Duration('5s'),
  /** Field of the JSON response that becomes `sub` (dotted path allowed). */
  subject: Type.String({ minLength: 1, default: 'id' }),
  /** Claim name -> field of the JSON response (dotted path allowed). */
  claims: Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1 }), { default: {} })
})

export const AuthSchema = obj({
  basePath: Type.String({ pattern: '^/[^?#]*[^/?#]$', default: '/auth', errorMessage: 'must be a path starting with / and not ending with /' }),
  users: Type.Optional(obj({ file: Type.String({ minLength: 1 }) })),
  delegate: Type.Optional(DelegateSchema),
  clients: Type.Optional(Type.Record(Type.String({ minLength: 1 }), ClientSchema)),
  rateLimit: obj({
    max: Type.Integer({ minimum: 1, default: 10 }),
    window: Duration('1m')
  }, { default: {} }),
  /** Largest accepted request body of the token endpoints, in bytes. */
  bodyLimit: Type.Integer({ minimum: 256, default: 16384 }),
  cookies: Type.Optional(AuthCookiesSchema)
})
export type AuthConfig = Static<typeof AuthSchema>

export const ConfigSchema = obj({
  server: obj({
    host: Type.String({ minLength: 1, default: '0.0.0.0' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
    /** Honour incoming X-Forwarded-* only when true. */
    trustProxy: Type.Boolean({ default: false }),
    /** Larger request headers are answered with 431. */
    maxHeaderBytes: Type.Integer({ minimum: 1024, maximum: 1048576, default: 16384 }),
    requestTimeout: Duration('30s'),
    /** Upstream slower than this: 504. */
    upstreamTimeout: Duration('10s'),
    /** On SIGTERM, in-flight requests get this long before the process exits. */
    shutdownGrace: Duration('10s'),
    /**
     * Processes serving the same ports (node:cluster); 1 runs in-process.
     * Each worker has its own verified-token cache and metrics registry.
     */
    workers: Type.Integer({ minimum: 1, maximum: 64, default: 1 })
  }, { default: {} }),
  admin: Type.Optional(obj({
    host: Type.String({ minLength: 1, default: '127.0.0.1' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 9090 }),
    /** When non-empty, POST/DELETE admin calls need `Authorization: Bearer <token>`. */
    token: Type.String({ default: '' })
  })),
  store: obj({
    type: Type.Union([Type.Literal('redis'), Type.Literal('memory')], { default: 'redis', errorMessage: 'must be redis or memory' }),
    url: Type.String({ minLength: 1, default: 'redis://127.0.0.1:6379' }),
    sentinels: Type.Optional(Type.Array(HostPort, { minItems: 1 })),
    name: Type.Optional(Type.String({ minLength: 1 })),
    cluster: Type.Optional(Type.Array(HostPort, { minItems: 1 })),
    /** ACL user and password of the data nodes under Sentinel or Cluster (a standalone `url` carries its own). */
    username: Type.Optional(Type.String({ minLength: 1 })),
    password: Type.Optional(Type.String({ minLength: 1 })),
    /** Password of the Sentinels themselves. */
    sentinelPassword: Type.Optional(Type.String({ minLength: 1 })),
    /** TLS to the data nodes under Sentinel or Cluster (standalone: use `rediss://`). */
    tls: Type.Boolean({ default: false }),
    keyPrefix: Type.String({ default: 'jotgate:' }),
    onError: Type.Union([Type.Literal('deny'), Type.Literal('allow')], { default: 'deny', errorMessage: 'must be deny or allow' }),
    /** A store call slower than this counts as a store failure. */
    commandTimeout: Duration('500ms'),
    /**
     * Keep a local replica of the revocation list (Redis only): no store
     * round trip per request; a revocation call returns once every live
     * instance applied it.
     */
    replica: Type.Boolean({ default: false })
  }, { default: {} }),
  tokens: obj({
    issuer: Type.Optional(Type.String({ minLength: 1 })),
    audience: Type.Optional(StringList),
    accessTtl: Duration('10m'),
    refreshTtl: Duration('7d'),
    clockTolerance: Duration('30s'),
    maxTokenBytes: Type.Integer({ minimum: 256, maximum: 65536, default: 8192 }),
    maxLifetime: Duration('24h'),
    keys: Type.Array(KeySchema, { default: [] }),
    trustedIssuers: Type.Array(TrustedIssuerSchema, { default: [] }),
    /** Verified-token cache entries (0 disables it). Revocation is checked on every hit. */
    cacheSize: Type.Integer({ minimum: 0, default: 10000 }),
    /** Token sources besides the Authorization header, for every route (a route's `tokenSources` replaces it). */
    sources: Type.Optional(TokenSourcesSchema)
  }, { default: {} }),
  auth: Type.Optional(AuthSchema),
  claimHeaders: Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1 }), {
    default: { 'X-User-Id': 'sub', 'X-User-Roles': 'roles', 'X-Client-Id': 'azp' }
  }),
  stripHeaders: Type.Array(Type.String({ minLength: 1 }), { default: ['X-User-*', 'X-Client-Id', 'X-Jwt-*'] }),
  routes: Type.Array(RouteSchema, { default: [] }),
  /** CORS for every route and the token endpoints (a route's `cors` replaces it); omit to disable. */
  cors: Type.Optional(CorsSchema),
  log: obj({
    level: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), {
      default: 'info', errorMessage: 'must be one of fatal, error, warn, info, debug, trace, silent'
    }),
    /**
     * The one line per request (at info). Off, for deployments whose load
     * balancer already logs every request: the rest of the info lines stay.
     */
    requests: Type.Boolean({ default: true })
  }, { default: {} })
})

/** The validated configuration, defaults applied, paths resolved, frozen. */
export type GatewayConfig = Static<typeof ConfigSchema>
