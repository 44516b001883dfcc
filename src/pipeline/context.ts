import type { CompiledRoute } from './route-table.js'

/** The payload of a verified token. */
export type Claims = Readonly<Record<string, unknown>>

/** A token that passed the signature and claim checks. */
export interface VerifiedToken {
  claims: Claims
  iss: string
  kid: string
  /** `exp` in seconds since the epoch (required, a number). */
  exp: number
  /**
   * The identity headers this token gave on the last route it was mapped
   * for: a cached token sent again to the same route is not encoded again.
   */
  mapped?: { route: CompiledRoute, headers: Readonly<Record<string, string>> }
}

/**
 * What the pipeline knows of one request. Each step reads what earlier
 * steps filled and fills its own slot, or throws one coded error.
 */
export interface RequestContext {
  method: string
  /** The normalized path (CONTRACT step 1): matched and forwarded. */
  path: string
  /** The incoming request headers (lower-case names), never modified. */
  headers: Readonly<Record<string, string | string[] | undefined>>
  route?: CompiledRoute
  /** The bearer token, when one was presented. */
  token?: string
  /** Where the token came from (a cookie token brings the CSRF check). */
  tokenSource?: 'header' | 'cookie' | 'query'
  /** True for a WebSocket upgrade request. */
  websocket?: boolean
  verified?: VerifiedToken
  /** Identity headers to set on the forwarded request (lower-case names; shared, never modified). */
  identity?: Readonly<Record<string, string>>
}
