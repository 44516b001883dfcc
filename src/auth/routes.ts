/**
 * The token endpoints under `auth.basePath` (CONTRACT section 4) and the
 * JWKS document. They always need the store: while it is down they answer
 * 503 JOTGATE_STORE_UNAVAILABLE whatever `store.onError` says.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import formbody from '@fastify/formbody'
import { gatewayError, isGatewayError } from '../errors.js'
import { toMs } from '../config/duration.js'
import type { AuthConfig } from '../config/schema.js'
import type { Generation } from '../generation.js'
import type { Store } from '../store/types.js'
import { StoreUnavailableError } from '../store/types.js'
import { revocationSubject } from '../pipeline/check-revocation.js'
import { extractTokenFrom, authorizationValues, cookieValues, headerValues } from '../pipeline/extract-token.js'
import { tokenPolicies } from '../pipeline/token-policy.js'
import { checkOrigin } from '../pipeline/check-csrf.js'
import { createTokenCookies, type TokenCookies } from './cookies.js'
import { jwksDocument } from '../keys/jwk.js'
import { createCredentialSource, type CredentialSource } from './credentials.js'
import { createSessionService, type SessionService } from './sessions.js'

export interface AuthRouteOptions {
  auth: AuthConfig | undefined
  store: Store
  generation: () => Generation
  now?: () => number
  /** Told the outcome of every login attempt (metrics). */
  onLogin?: (outcome: 'success' | 'failed' | 'rate_limited' | 'error') => void
}

interface Runtime { sessions: SessionService, credentials: CredentialSource | undefined, cookies: TokenCookies | undefined }

const OTHER_METHODS = ['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']

export async function registerAuthRoutes (app: FastifyInstance, { auth, store, generation, now, onLogin }: AuthRouteOptions): Promise<void> {
  app.get('/.well-known/jwks.json', async (_request, reply) => {
    const doc = jwksDocument(generation().keys.local)
    if (doc.keys.length === 0) throw gatewayError('JOTGATE_ROUTE_NOT_FOUND', { reason: 'no-public-keys' })
    return reply.header('cache-control', 'public, max-age=300').send(doc)
  })
  if (auth === undefined) return

  // Built once per config generation, on first use.
  const runtimes = new WeakMap<Generation, Runtime>()
  const runtime = (): Runtime => {
    const gen = generation()
    let rt = runtimes.get(gen)
    if (rt === undefined) {
      const genAuth = gen.config.auth ?? auth
      rt = {
        sessions: createSessionService(gen.config, gen.keys.signing!, store, now),
        credentials: createCredentialSource(genAuth),
        cookies: createTokenCookies(gen.config)
      }
      runtimes.set(gen, rt)
    }
    return rt
  }

  await app.register(async (scope) => {
    await scope.register(formbody, { bodyLimit: auth.bodyLimit })
    scope.addHook('onSend', async (_request, reply, payload) => {
      // RFC 6749 section 5.1: token responses must not be cached.
      reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
      return payload
    })

    const post = (path: string, handler: (request: FastifyRequest, reply: FastifyReply) => Promise<object | undefined>) => {
      scope.post(path, { bodyLimit: auth.bodyLimit }, async (request, reply) => {
        try {
          const result = await handler(request, reply)
          return result === undefined ? reply.code(204).send() : reply.send(result)
        } catch (err) {
          throw storeDown(err)
        }
      })
      scope.route({ method: OTHER_METHODS, url: path, handler: async (_req, reply) => { reply.header('allow', 'POST'); throw gatewayError('JOTGATE_METHOD_NOT_ALLOWED') } })
    }

    const windowMs = toMs(auth.rateLimit.window)
    const maxAttempts = auth.rateLimit.max
    post(`${auth.basePath}/login`, async (request, reply) => {
      try {
        const pair = await login(request, reply)
        onLogin?.('success')
        return pair
      } catch (err) {
        const code = (err as { code?: string }).code
        onLogin?.(code === 'JOTGATE_LOGIN_FAILED' ? 'failed' : code === 'JOTGATE_RATE_LIMITED' ? 'rate_limited' : 'error')
        throw err
      }
    })

    async function login (request: FastifyRequest, reply: FastifyReply) {
      const body = fields(request.body, ['username', 'password'], ['client_id'])
      const rt = runtime()
      // Cookies when the body asks (`cookie: true`), the client is set up
      // for them, or always. A login that sets cookies must come from a
      // trusted page: a cross-site form would otherwise log the victim's
      // browser into the attacker's account (login CSRF).
      const clientCookies = body.client_id === undefined ? undefined : generation().config.auth?.clients?.[body.client_id]?.cookies
      const wantsCookies = rt.cookies !== undefined && (generation().config.auth?.cookies?.always === true || clientCookies === true || isTrue((request.body as Record<string, unknown>).cookie))
      if (wantsCookies) originCheck(request)
      await rateLimit(store, request.ip, body.username!, maxAttempts, windowMs)
      const clients = generation().config.auth?.clients
      let client: string | undefined
      if (clients !== undefined) {
        if (body.client_id === undefined || !Object.hasOwn(clients, body.client_id)) throw gatewayError('JOTGATE_CLIENT_UNKNOWN')
        client = body.client_id
      }
      const identity = await rt.credentials!(body.username!, body.password!)
      if (identity === undefined) {
        request.log.info({ reason: 'login-failed', username: body.username }, 'login refused')
        throw gatewayError('JOTGATE_LOGIN_FAILED')
      }
      const pair = await rt.sessions.login(identity, client)
      request.log.info({ reason: 'login', sub: identity.sub, client }, 'login')
      if (wantsCookies) reply.header('set-cookie', rt.cookies!.set(pair))
      return pair
    }

    post(`${auth.basePath}/refresh`, async (request, reply) => {
      const rt = runtime()
      // With cookies, a body without refresh_token spends the refresh cookie.
      const fromCookie = rt.cookies !== undefined && (request.body === undefined || (isObject(request.body) && request.body.refresh_token === undefined))
      if (fromCookie) {
        const values = cookieValues(headerValues(request.raw.rawHeaders, 'cookie'), rt.cookies!.refresh)
        if (values.length !== 1) throw gatewayError(values.length === 0 ? 'JOTGATE_BAD_REQUEST' : 'JOTGATE_REFRESH_INVALID', { reason: `refresh-cookie-${values.length === 0 ? 'missing' : 'repeated'}` })
        originCheck(request)
        const pair = await rt.sessions.refresh(values[0]!)
        reply.header('set-cookie', rt.cookies!.set(pair))
        return pair
      }
      const body = fields(request.body, ['refresh_token'], [], 'JOTGATE_REFRESH_INVALID')
      const pair = await rt.sessions.refresh(body.refresh_token!)
      if (rt.cookies !== undefined && isTrue((request.body as Record<string, unknown>).cookie)) {
        originCheck(request)
        reply.header('set-cookie', rt.cookies.set(pair))
      }
      return pair
    })

    post(`${auth.basePath}/logout`, async (request, reply) => {
      const body = fields(request.body ?? {}, [], ['refresh_token'])
      await runtime().sessions.logout(await authenticate(request), body.refresh_token)
      clearCookies(request, reply)
      return undefined
    })

    post(`${auth.basePath}/logout-all`, async (request, reply) => {
      await runtime().sessions.logoutAll(await authenticate(request))
      clearCookies(request, reply)
      return undefined
    })

    /** Logout ends the session the cookies hold: a browser that sent them gets them deleted. */
    function clearCookies (request: FastifyRequest, reply: FastifyReply): void {
      const cookies = runtime().cookies
      if (cookies === undefined) return
      const sent = headerValues(request.raw.rawHeaders, 'cookie')
      if (cookieValues(sent, cookies.access).length > 0 || cookieValues(sent, cookies.refresh).length > 0) reply.header('set-cookie', cookies.clear())
    }
  })

  /** Throws 403 JOTGATE_CSRF unless the request comes from the gateway's own origin or one its `cors` trusts. */
  function originCheck (request: FastifyRequest): void {
    const policies = tokenPolicies(generation().config)
    checkOrigin(request.headers, policies.gateway.trustedOrigins, policies.trustProxy)
  }

  /**
   * The caller's access token, verified and not revoked (store down: 503),
   * from the Authorization header or, with `tokens.sources.cookie`, the
   * access cookie (then from a trusted origin only).
   */
  async function authenticate (request: FastifyRequest) {
    const gen = generation()
    const raw = request.raw.rawHeaders
    const found = extractTokenFrom({ authorization: authorizationValues(raw), cookie: headerValues(raw, 'cookie'), query: '' }, { cookie: gen.config.tokens.sources?.cookie?.name })
    if (found === undefined) throw gatewayError('JOTGATE_TOKEN_MISSING')
    if (found.source === 'cookie') originCheck(request)
    const token = found.token
    const verified = await gen.verifyToken(token)
    const revoked = await store.isRevoked(revocationSubject(verified.claims))
    if (revoked) throw gatewayError('JOTGATE_TOKEN_REVOKED')
    return verified
  }
}

/** Counts the attempt against the IP and the username (shared through the store). */
async function rateLimit (store: Store, ip: string, username: string, max: number, windowMs: number): Promise<void> {
  const [byIp, byUser] = await Promise.all([store.hit(`login:ip:${ip}`, windowMs), store.hit(`login:user:${username.toLowerCase()}`, windowMs)])
  const over = [byIp, byUser].filter((h) => h.count > max)
  if (over.length > 0) {
    const retryAfter = Math.max(1, Math.ceil(Math.max(...over.map((h) => h.resetMs)) / 1000))
    throw gatewayError('JOTGATE_RATE_LIMITED', { headers: { 'retry-after': String(retryAfter) } })
  }
}

/** Required and optional string fields of a JSON or form body; anything else is a 400. */
function fields (body: unknown, required: string[], optional: string[], code: 'JOTGATE_BAD_REQUEST' | 'JOTGATE_REFRESH_INVALID' = 'JOTGATE_BAD_REQUEST'): Record<string, string | undefined> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw gatewayError('JOTGATE_BAD_REQUEST', { reason: 'body-not-object' })
  const b = body as Record<string, unknown>
  const out: Record<string, string | undefined> = {}
  for (const name of [...required, ...optional]) {
    const value = b[name]
    if (value === undefined && optional.includes(name)) continue
    // A missing field or one of the wrong type (a number, an array from a
    // repeated form field, an object) is a malformed request: 400 whatever
    // the endpoint. Only a string that cannot be right takes `code`.
    if (typeof value !== 'string') throw gatewayError('JOTGATE_BAD_REQUEST', { reason: `field-${name}` })
    if (value.length === 0 || value.length > 4096) throw gatewayError(code, { reason: `field-${name}` })
    out[name] = value
  }
  return out
}

function isObject (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** `cookie: true` in JSON, `cookie=true` in a form. */
function isTrue (value: unknown): boolean {
  return value === true || value === 'true'
}

function storeDown (err: unknown): unknown {
  if (err instanceof StoreUnavailableError) return gatewayError('JOTGATE_STORE_UNAVAILABLE', { reason: 'store-down', cause: err })
  if (isGatewayError(err)) return err
  return err
}
