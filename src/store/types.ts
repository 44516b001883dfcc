/**
 * The store: revocations, refresh tokens and login rate limits, shared by
 * every instance. One interface, two implementations (redis.ts, memory.ts);
 * the pipeline sees only `Store`, so a local replica of the revocation list
 * or a Redis Cluster can come in behind it without touching the steps.
 *
 * Every method rejects with a StoreUnavailableError when the backend cannot
 * answer in time; callers decide whether that fails closed.
 */

/** The identifiers of one token that revocation can cover. */
export interface RevocationSubject {
  jti?: string
  sid?: string
  sub?: string
  /** Seconds since the epoch. */
  iat?: number
}

/** A stored refresh token (stored under the hash of the token, never the token). */
export interface RefreshRecord {
  sub: string
  sid: string
  /** The `client_id` (becomes `azp`), when clients are configured. */
  client?: string
  /** The user's claims copied into every access token of the session. */
  claims: Record<string, unknown>
  /** Seconds since the epoch. */
  issuedAt: number
  /** Seconds since the epoch; the record disappears then. */
  expiresAt: number
}

export type SpendResult =
  | { status: 'ok', record: RefreshRecord }
  | { status: 'reused', record: RefreshRecord }
  | { status: 'unknown' }

export interface Store {
  readonly kind: 'redis' | 'memory'
  /** Resolves once the backend answered once; rejects when it cannot within `timeoutMs`. */
  ready: (timeoutMs?: number) => Promise<void>
  /** True while the backend is believed reachable. Cheap; for readiness and fast failing. */
  isHealthy: () => boolean

  /**
   * True when the token is covered by a revocation: its `jti`, its `sid`, or
   * its `sub` revoked at a time T >= its `iat` (a token without `iat` under a
   * revoked `sub` counts as revoked: fail closed). Cut-offs are whole seconds
   * (the floor of the revocation time), so a fractional `iat` is compared by
   * its whole second: a token issued at 1000.3 is covered by a revocation
   * made at 1000.7 (cut-off 1000).
   */
  isRevoked: (subject: RevocationSubject) => Promise<boolean>
  /**
   * The same answer without a round trip, when this instance holds a list
   * it may answer from (the memory store; a trusted replica); undefined
   * when only `isRevoked` can answer now. The hot path asks this first.
   */
  revokedLocally?: (subject: RevocationSubject) => boolean | undefined
  /** Revokes one token until `exp` (seconds since the epoch) has passed. */
  revokeJti: (jti: string, exp: number) => Promise<void>
  /** Revokes every token of a session, for `ttl` seconds. */
  revokeSid: (sid: string, ttl: number) => Promise<void>
  /**
   * Revokes every token of `sub` issued at or before `at` (seconds), for
   * `ttl` seconds. A later cut-off never moves back to an earlier one.
   */
  revokeSub: (sub: string, at: number, ttl: number) => Promise<void>
  /** The cut-off time of `sub`, if one is live. */
  subRevokedAt: (sub: string) => Promise<number | undefined>

  /** Stores a refresh token's record under `hash` until record.expiresAt. */
  putRefresh: (hash: string, record: RefreshRecord) => Promise<void>
  /**
   * Spends a refresh token atomically: exactly one of concurrent callers
   * gets `ok`; later callers get `reused` until the record expires.
   */
  spendRefresh: (hash: string) => Promise<SpendResult>

  /**
   * Counts one hit on `key` in a fixed window of `windowMs`; returns the
   * count in the current window and the ms left until it resets.
   */
  hit: (key: string, windowMs: number) => Promise<{ count: number, resetMs: number }>

  close: () => Promise<void>
}

export class StoreUnavailableError extends Error {
  readonly code = 'JOTGATE_STORE_UNAVAILABLE'
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StoreUnavailableError'
  }
}
