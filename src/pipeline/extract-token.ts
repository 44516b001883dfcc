/**
 * Step 3: the token is taken from `Authorization: Bearer <token>`. The
 * scheme is case-insensitive (RFC 7235 section 2.1). A request carrying more
 * than one token is refused: with two Authorization headers a proxy in front
 * and jotgate could disagree on which one counts (Node itself keeps only the
 * first, so the adapter passes every raw value).
 */
import { gatewayError } from '../errors.js'

// RFC 6750 section 2.1 b64token; the compact JWS alphabet is a subset of it.
const BEARER = /^bearer +([A-Za-z0-9\-._~+/]+=*) *$/i
const BEARER_EMPTY = /^bearer *$/i

/**
 * The token, or undefined when none was sent; throws a coded error when the
 * Authorization header is unusable or repeated.
 * @param authorization every Authorization value of the request, in order
 */
export function extractToken (authorization: readonly string[]): string | undefined {
  if (authorization.length === 0) return undefined
  if (authorization.length > 1) throw gatewayError('JOTGATE_TOKEN_AMBIGUOUS', { reason: 'authorization-repeated' })
  const value = authorization[0]!
  const match = BEARER.exec(value)
  if (match !== null) return match[1]
  if (BEARER_EMPTY.test(value)) throw gatewayError('JOTGATE_TOKEN_MISSING', { reason: 'bearer-empty' })
  if (value.includes(',')) throw gatewayError('JOTGATE_TOKEN_AMBIGUOUS', { reason: 'authorization-list' })
  throw gatewayError('JOTGATE_TOKEN_MALFORMED', { reason: 'authorization-scheme' })
}

/** Every Authorization value of a raw header list (`[name, value, ...]`). */
export function authorizationValues (rawHeaders: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!
    if (name.length === 13 && name.toLowerCase() === 'authorization') out.push(rawHeaders[i + 1]!)
  }
  return out
}
