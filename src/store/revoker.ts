/**
 * Revocation with the lifetimes the config implies: an entry lives exactly
 * as long as a token it covers could still be accepted, so the store never
 * grows without bound.
 */
import type { GatewayConfig } from '../config/schema.js'
import { toSeconds } from '../config/duration.js'
import type { Store } from './types.js'

export interface Revoker {
  /** One token, until its `exp` (+ clock tolerance). */
  jti: (jti: string, exp: number) => Promise<void>
  /** Every token of a session. */
  sid: (sid: string) => Promise<void>
  /** Every token of a subject issued until now; returns the cut-off (seconds). */
  sub: (sub: string) => Promise<number>
  /** How long session and subject entries live, in seconds. */
  sessionTtl: number
}

export function createRevoker (config: GatewayConfig, store: Store, now: () => number = Date.now): Revoker {
  const tolerance = toSeconds(config.tokens.clockTolerance)
  const refreshTtls = [config.tokens.refreshTtl, ...Object.values(config.auth?.clients ?? {}).map((c) => c.refreshTtl ?? config.tokens.refreshTtl)]
  // The last access token of a session is issued just before its refresh
  // token expires and lives at most maxLifetime after that.
  const sessionTtl = Math.max(...refreshTtls.map(toSeconds)) + toSeconds(config.tokens.maxLifetime) + tolerance
  return {
    sessionTtl,
    jti: (jti, exp) => store.revokeJti(jti, exp + tolerance),
    sid: (sid) => store.revokeSid(sid, sessionTtl),
    async sub (sub) {
      // Tokens with iat <= at are refused; a login in the same second as a
      // logout-all waits for the next second (see the token service).
      const at = Math.floor(now() / 1000)
      await store.revokeSub(sub, at, sessionTtl)
      return at
    }
  }
}
