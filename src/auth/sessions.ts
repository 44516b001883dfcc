/**
 * The token lifecycle: a login opens a session (`sid`) and issues an access
 * token plus an opaque refresh token; refresh spends the refresh token and
 * issues a new pair; a spent refresh token presented again revokes the
 * whole session (RFC 9700 section 4.14.2 reuse detection); logout revokes
 * the access token and its session; logout-all revokes the subject.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { GatewayConfig } from '../config/schema.js'
import { toSeconds } from '../config/duration.js'
import { gatewayError } from '../errors.js'
import { createTokenSigner, randomId, type TokenSigner } from '../keys/signer.js'
import type { KeyMaterial } from '../keys/material.js'
import type { Store, RefreshRecord } from '../store/types.js'
import { createRevoker } from '../store/revoker.js'
import type { VerifiedToken } from '../pipeline/context.js'
import type { Identity } from './credentials.js'

/** RFC 6749 section 5.1 field names. */
export interface TokenPair {
  access_token: string
  token_type: 'Bearer'
  expires_in: number
  refresh_token: string
  refresh_expires_in: number
}

/** Claims jotgate sets itself; a user's claims never override them. */
const RESERVED = new Set(['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'sid', 'azp'])

export interface SessionService {
  login: (identity: Identity, client: string | undefined) => Promise<TokenPair>
  refresh: (refreshToken: string) => Promise<TokenPair>
  logout: (token: VerifiedToken, refreshToken: string | undefined) => Promise<void>
  logoutAll: (token: VerifiedToken) => Promise<void>
}

/** SHA-256 of a refresh token: the store never holds the token itself. */
export const refreshHash = (token: string): string => createHash('sha256').update(token).digest('base64url')

export function createSessionService (config: GatewayConfig, key: KeyMaterial, store: Store, now: () => number = Date.now): SessionService {
  const sign: TokenSigner = createTokenSigner(key)
  const revoker = createRevoker(config, store, now)
  const { tokens } = config
  const clients = config.auth?.clients
  const aud = tokens.audience === undefined ? undefined : (tokens.audience.length === 1 ? tokens.audience[0] : [...tokens.audience])
  const ttls = (client: string | undefined) => {
    const c = client === undefined ? undefined : clients?.[client]
    return { access: toSeconds(c?.accessTtl ?? tokens.accessTtl), refresh: toSeconds(c?.refreshTtl ?? tokens.refreshTtl) }
  }

  async function issue (sub: string, sid: string, client: string | undefined, userClaims: Record<string, unknown>): Promise<TokenPair> {
    let t = Math.floor(now() / 1000)
    // A logout-all cuts off tokens with iat <= its second; a login in that
    // same second waits for the next one so its token is not born revoked.
    const cutOff = await store.subRevokedAt(sub)
    if (cutOff !== undefined && cutOff >= t) {
      await new Promise((resolve) => setTimeout(resolve, (cutOff + 1) * 1000 - now() + 5))
      t = Math.floor(now() / 1000)
    }
    const { access, refresh } = ttls(client)
    const claims: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(userClaims)) if (!RESERVED.has(k)) claims[k] = v
    const accessToken = sign({
      ...claims,
      iss: tokens.issuer,
      sub,
      ...(aud === undefined ? {} : { aud }),
      iat: t,
      nbf: t,
      exp: t + access,
      jti: randomId(),
      sid,
      ...(client === undefined ? {} : { azp: client })
    })
    // 256 random bits: unguessable, and opaque to the client.
    const refreshToken = randomBytes(32).toString('base64url')
    const record: RefreshRecord = { sub, sid, claims: userClaims, issuedAt: t, expiresAt: t + refresh, ...(client === undefined ? {} : { client }) }
    await store.putRefresh(refreshHash(refreshToken), record)
    return { access_token: accessToken, token_type: 'Bearer', expires_in: access, refresh_token: refreshToken, refresh_expires_in: refresh }
  }

  return {
    login: (identity, client) => issue(identity.sub, randomId(), client, identity.claims),

    async refresh (refreshToken) {
      const spent = await store.spendRefresh(refreshHash(refreshToken))
      if (spent.status === 'unknown') throw gatewayError('JOTGATE_REFRESH_INVALID', { reason: 'refresh-unknown' })
      const { record } = spent
      if (spent.status === 'reused') {
        // Someone replayed a spent token: the thief or the owner, we cannot
        // tell, so the whole session ends, access tokens included.
        await revoker.sid(record.sid)
        throw gatewayError('JOTGATE_REFRESH_INVALID', { reason: 'refresh-reused' })
      }
      const revoked = await store.isRevoked({ sid: record.sid, sub: record.sub, iat: record.issuedAt })
      if (revoked) throw gatewayError('JOTGATE_REFRESH_INVALID', { reason: 'session-revoked' })
      return issue(record.sub, record.sid, record.client, record.claims)
    },

    async logout (token, refreshToken) {
      const { jti, sid } = token.claims as { jti?: string, sid?: string }
      if (jti !== undefined) await revoker.jti(jti, token.exp)
      if (sid !== undefined) await revoker.sid(sid)
      if (refreshToken !== undefined) await store.spendRefresh(refreshHash(refreshToken))
    },

    async logoutAll (token) {
      const sub = token.claims.sub
      if (typeof sub !== 'string') throw gatewayError('JOTGATE_BAD_REQUEST', { reason: 'no-sub' })
      await revoker.sub(sub)
    }
  }
}
