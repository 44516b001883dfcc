/**
 * The error catalogue: every refusal jotgate makes is one of these codes.
 *
 * Clients get the fixed message of the code; the detail of what went wrong
 * travels as `reason` (a stable, short id for logs and metrics) and `cause`
 * (the foreign error, for the log only). Codes are a public contract: the
 * README's table is checked against this list by test/unit/errors.test.ts.
 */
import createError from '@fastify/error'

export const CATALOGUE = {
  JOTGATE_TOKEN_MISSING: [401, 'A bearer token is required'],
  JOTGATE_TOKEN_MALFORMED: [401, 'The token is malformed'],
  JOTGATE_TOKEN_AMBIGUOUS: [401, 'More than one token was presented'],
  JOTGATE_TOKEN_SIGNATURE: [401, 'The token signature is invalid'],
  JOTGATE_TOKEN_ALGORITHM: [401, 'The token algorithm is not accepted for its key'],
  JOTGATE_TOKEN_KEY_UNKNOWN: [401, 'The token names no known key'],
  JOTGATE_TOKEN_EXPIRED: [401, 'The token has expired'],
  JOTGATE_TOKEN_NOT_YET_VALID: [401, 'The token is not valid yet'],
  JOTGATE_TOKEN_LIFETIME: [401, 'The token lifetime exceeds the accepted maximum'],
  JOTGATE_TOKEN_ISSUER: [401, 'The token issuer is not trusted'],
  JOTGATE_TOKEN_AUDIENCE: [401, 'The token audience is not accepted'],
  JOTGATE_TOKEN_REVOKED: [401, 'The token has been revoked'],
  JOTGATE_FORBIDDEN: [403, 'The token does not grant access to this route'],
  JOTGATE_CSRF: [403, 'Cross-site request refused'],
  JOTGATE_ROUTE_NOT_FOUND: [404, 'No route matches this path'],
  JOTGATE_METHOD_NOT_ALLOWED: [405, 'This method is not allowed on this route'],
  JOTGATE_BAD_PATH: [400, 'The request path is not acceptable'],
  JOTGATE_CLAIM_UNSAFE: [400, 'A claim cannot be forwarded safely as a header'],
  JOTGATE_HEADERS_TOO_LARGE: [431, 'Request headers are too large'],
  JOTGATE_BAD_REQUEST: [400, 'The request is not acceptable'],
  JOTGATE_CLIENT_UNKNOWN: [400, 'Unknown client_id'],
  JOTGATE_LOGIN_FAILED: [401, 'Invalid username or password'],
  JOTGATE_RATE_LIMITED: [429, 'Too many attempts, retry later'],
  JOTGATE_REFRESH_INVALID: [401, 'The refresh token is invalid'],
  JOTGATE_CREDENTIALS_UNAVAILABLE: [503, 'The credential service is unavailable'],
  JOTGATE_ADMIN_UNAUTHORIZED: [401, 'The admin token is missing or wrong'],
  JOTGATE_STORE_UNAVAILABLE: [503, 'The revocation store is unavailable'],
  JOTGATE_KEYS_UNAVAILABLE: [503, 'The key source of this issuer is unavailable'],
  JOTGATE_UPSTREAM_UNAVAILABLE: [502, 'The upstream service is unavailable'],
  JOTGATE_UPSTREAM_TIMEOUT: [504, 'The upstream service did not answer in time'],
  JOTGATE_SHUTTING_DOWN: [503, 'The gateway is shutting down'],
  JOTGATE_INTERNAL: [500, 'Internal gateway error']
} as const satisfies Record<string, readonly [number, string]>

export type ErrorCode = keyof typeof CATALOGUE

/** Options carried by a gateway error besides its code. */
export interface GatewayErrorOptions {
  /** A short stable id of what failed (`exp`, `kid-missing`, ...), for logs and metrics. */
  reason?: string
  /** The foreign error behind this one; logged, never sent to the client. */
  cause?: unknown
  /** Extra response headers (Retry-After, ...). */
  headers?: Record<string, string>
}

export interface GatewayError extends Error {
  code: ErrorCode
  statusCode: number
  reason: string
  headers?: Record<string, string>
}

const constructors = new Map<ErrorCode, ReturnType<typeof createError>>()
for (const code of Object.keys(CATALOGUE) as ErrorCode[]) {
  const [status, message] = CATALOGUE[code]
  constructors.set(code, createError(code, message, status))
}

/** Builds the error of `code`. The message is the catalogue's, never the detail. */
export function gatewayError (code: ErrorCode, options: GatewayErrorOptions = {}): GatewayError {
  const Ctor = constructors.get(code)!
  const err = new Ctor() as unknown as GatewayError
  err.reason = options.reason ?? code.slice('JOTGATE_'.length).toLowerCase()
  if (options.cause !== undefined) (err as Error).cause = options.cause
  if (options.headers !== undefined) err.headers = options.headers
  return err
}

export function isGatewayError (err: unknown): err is GatewayError {
  return err instanceof Error && typeof (err as GatewayError).code === 'string' &&
    Object.hasOwn(CATALOGUE, (err as GatewayError).code)
}

/**
 * The JSON body of CONTRACT section 6. `error` is the HTTP reason phrase.
 */
export function errorBody (err: GatewayError): { statusCode: number, error: string, code: ErrorCode, message: string } {
  return { statusCode: err.statusCode, error: REASON_PHRASES[err.statusCode] ?? 'Error', code: err.code, message: err.message }
}

const REASON_PHRASES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout'
}

/**
 * RFC 6750 section 3: the challenge for a 401 or 403. Without a presented
 * token no error attribute is given (section 3.1 says SHOULD NOT).
 */
export function wwwAuthenticate (err: GatewayError, tokenPresented: boolean): string | undefined {
  // A CSRF refusal is about where the request came from, not the token's scope.
  if (err.code === 'JOTGATE_CSRF') return undefined
  if (err.statusCode === 403) return 'Bearer realm="jotgate", error="insufficient_scope"'
  if (err.statusCode !== 401) return undefined
  return tokenPresented ? 'Bearer realm="jotgate", error="invalid_token"' : 'Bearer realm="jotgate"'
}
