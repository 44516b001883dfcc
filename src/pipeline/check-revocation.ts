/**
 * Step 5: revocation, on every request, cache hit or not. Its own step with
 * explicit fail-closed handling: with `onError: deny` an unreachable store
 * refuses with 503; with `allow` the verified token goes through and the
 * fail-open is reported to the caller (logged and counted).
 */
import { gatewayError } from '../errors.js'
import { StoreUnavailableError, type RevocationSubject, type Store } from '../store/types.js'
import type { Claims, VerifiedToken } from './context.js'

/** What revocation can cover of a verified token (its claims are type-checked already). */
export function revocationSubject (claims: Claims): RevocationSubject {
  return {
    jti: claims.jti as string | undefined,
    sid: claims.sid as string | undefined,
    sub: claims.sub as string | undefined,
    iat: typeof claims.iat === 'number' ? claims.iat : undefined
  }
}

/** Returns nothing when the answer was local (the memory store, a trusted replica), a promise when it needs the store. */
export type RevocationCheck = (token: VerifiedToken) => void | Promise<void>

export function createRevocationCheck (store: Store, onError: 'deny' | 'allow', onFailOpen: (cause: unknown) => void): RevocationCheck {
  const revokedLocally = store.revokedLocally
  return function checkRevocation ({ claims }) {
    const subject = revocationSubject(claims)
    const local = revokedLocally?.(subject)
    if (local === true) throw gatewayError('JOTGATE_TOKEN_REVOKED', { reason: 'revoked' })
    if (local === false) return
    return store.isRevoked(subject).then((revoked) => {
      if (revoked) throw gatewayError('JOTGATE_TOKEN_REVOKED', { reason: 'revoked' })
    }, (cause: unknown) => {
      // Only an unreachable store may fail open: any other error (a bug, a
      // bad reply) is refused whatever onError says.
      if (onError === 'deny' || !(cause instanceof StoreUnavailableError)) {
        throw gatewayError('JOTGATE_STORE_UNAVAILABLE', { reason: 'store-down', cause })
      }
      onFailOpen(cause)
    })
  }
}
