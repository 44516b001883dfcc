/**
 * Step 3: the token is taken from `Authorization: Bearer <token>` and, when
 * the route opts in, from a cookie or a query parameter. The scheme is
 * case-insensitive (RFC 7235 section 2.1). A request carrying more than one
 * token is refused, even when the copies are identical: with two tokens a
 * proxy in front, jotgate and the upstream could each pick another one
 * (Node itself keeps only the first Authorization header, so the adapter
 * passes every raw value).
 */
import { gatewayError } from '../errors.js'

// RFC 6750 section 2.1 b64token; the compact JWS alphabet is a subset of it.
const BEARER = /^bearer +([A-Za-z0-9\-._~+/]+=*) *$/i
const BEARER_EMPTY = /^bearer *$/i
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/

export type TokenSource = 'header' | 'cookie' | 'query'

/** What a request offers as tokens, raw. */
export interface TokenCarriers {
  /** Every Authorization value, in order. */
  authorization: readonly string[]
  /** Every Cookie header value, in order. */
  cookie: readonly string[]
  /** The query as received: `''` or from its `?` on. */
  query: string
}

/** Where the matched route accepts tokens besides the Authorization header. */
export interface SourceNames {
  cookie?: string | undefined
  query?: string | undefined
}

export interface FoundToken {
  token: string
  source: TokenSource
}

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

/**
 * The one token of a request among the sources the route accepts, with
 * where it came from; undefined when none was sent. An empty cookie or
 * parameter counts as absent (a cleared cookie is not a token).
 * @throws GatewayError JOTGATE_TOKEN_AMBIGUOUS when two are present, whatever their sources
 */
export function extractTokenFrom (carriers: TokenCarriers, names: SourceNames): FoundToken | undefined {
  const found: FoundToken[] = []
  const header = extractToken(carriers.authorization)
  if (header !== undefined) found.push({ token: header, source: 'header' })
  if (names.cookie !== undefined) {
    for (const value of cookieValues(carriers.cookie, names.cookie)) found.push({ token: value, source: 'cookie' })
  }
  if (names.query !== undefined) {
    for (const value of queryValues(carriers.query, names.query)) found.push({ token: value, source: 'query' })
  }
  if (found.length === 0) return undefined
  if (found.length > 1) {
    throw gatewayError('JOTGATE_TOKEN_AMBIGUOUS', { reason: found.every((f) => f.source === found[0]!.source) ? `${found[0]!.source}-repeated` : 'several-sources' })
  }
  const one = found[0]!
  if (one.source !== 'header' && !B64TOKEN.test(one.token)) throw gatewayError('JOTGATE_TOKEN_MALFORMED', { reason: `${one.source}-not-b64token` })
  return one
}

/** Every Authorization value of a raw header list (`[name, value, ...]`). */
export function authorizationValues (rawHeaders: readonly string[]): string[] {
  return headerValues(rawHeaders, 'authorization')
}

/** Every value of one header (lower-case name) in a raw header list. */
export function headerValues (rawHeaders: readonly string[], lowerCaseName: string): string[] {
  const out: string[] = []
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!
    if (name.length === lowerCaseName.length && name.toLowerCase() === lowerCaseName) out.push(rawHeaders[i + 1]!)
  }
  return out
}

/**
 * The non-empty values of cookie `name` in Cookie headers (RFC 6265
 * section 5.4: `a=1; b=2`; names are case-sensitive; a value may be quoted).
 */
export function cookieValues (headers: readonly string[], name: string): string[] {
  const out: string[] = []
  for (const header of headers) {
    for (const pair of header.split(';')) {
      const eq = pair.indexOf('=')
      if (eq === -1 || pair.slice(0, eq).trim() !== name) continue
      let value = pair.slice(eq + 1).trim()
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1)
      if (value !== '') out.push(value)
    }
  }
  return out
}

/**
 * The non-empty values of parameter `name` in a raw query. Names are
 * compared decoded (`access%5Ftoken` is `access_token`), as the upstream's
 * parser would read them.
 */
export function queryValues (query: string, name: string): string[] {
  const out: string[] = []
  if (query.length <= 1) return out
  for (const pair of query.slice(1).split('&')) {
    const eq = pair.indexOf('=')
    const rawName = eq === -1 ? pair : pair.slice(0, eq)
    if (decodeQueryPart(rawName) !== name) continue
    const value = eq === -1 ? '' : decodeQueryPart(pair.slice(eq + 1))
    if (value !== '') out.push(value)
  }
  return out
}

/** application/x-www-form-urlencoded decoding; an undecodable part stays as it came. */
export function decodeQueryPart (part: string): string {
  const plus = part.replaceAll('+', ' ')
  try {
    return decodeURIComponent(plus)
  } catch {
    return plus
  }
}
