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

const REFRESH_RANDOM_BYTES = 32
const SID_BYTES = 16

/**
 * A refresh token: 256 random bits (unguessable) followed by the 128-bit
 * session id, base64url, opaque to the client. The store knows it only by
 * its hash; the sid inside lets refresh check the session before spending.
 */
export function mintRefreshToken (sid: string): string {
  const random = randomBytes(REFRESH_RANDOM_BYTES)
  const sidBytes = Buffer.from(sid, 'base64url')
  if (sidBytes.length !== SID_BYTES || sidBytes.toString('base64url') !== sid) return random.toString('base64url')
  return Buffer.concat([random, sidBytes]).toString('base64url')
}

/** The session id inside a refresh token, when it holds one. */
export function sidOfRefreshToken (token: string): string | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(token)) return undefined
  const bytes = Buffer.from(token, 'base64url')
  if (bytes.length !== REFRESH_RANDOM_BYTES + SID_BYTES || bytes.toString('base64url') !== token) return undefined
  return bytes.subarray(REFRESH_RANDOM_BYTES).toString('base64url')
}

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
      // Never at or before the cut-off, even if the timer fired early by the
      // wall clock (timers run on the monotonic one) or the clock is injected.
      t = Math.max(Math.floor(now() / 1000), cutOff + 1)
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
    const refreshToken = mintRefreshToken(sid)
    const record: RefreshRecord = { sub, sid, claims: userClaims, issuedAt: t, expiresAt: t + refresh, ...(client === undefined ? {} : { client }) }
    await store.putRefresh(refreshHash(refreshToken), record)
    return { access_token: accessToken, token_type: 'Bearer', expires_in: access, refresh_token: refreshToken, refresh_expires_in: refresh }
  }

  return {
    login: (identity, client) => issue(identity.sub, randomId(), client, identity.claims),

    async refresh (refreshToken) {
      // The session is checked BEFORE the token is spent. Checked after, a
      // concurrent replay of the same token (which revokes the session on
      // reuse) could land first, on another instance, and then none of the
      // racers would succeed; before, the one whose spend wins always does
      // (its pair then dies with the session the replays revoked).
      const embeddedSid = sidOfRefreshToken(refreshToken)
      if (embeddedSid !== undefined && await store.isRevoked({ sid: embeddedSid })) {
        throw gatewayError('JOTGATE_REFRESH_INVALID', { reason: 'session-revoked' })
      }
      const spent = await store.spendRefresh(refreshHash(refreshToken))
      if (spent.status === 'unknown') throw gatewayError('JOTGATE_REFRESH_INVALID', { reason: 'refresh-unknown' })
      const { record } = spent
      if (spent.status === 'reused') {
        // Someone replayed a spent token: the thief or the owner, we cannot
        // tell, so the whole session ends, access tokens included.
        await revoker.sid(record.sid)
        throw gatewayError('JOTGATE_REFRESH_INVALID', { reason: 'refresh-reused' })
      }
      // logout-all cuts the subject off by time; replays never revoke `sub`,
      // so this check cannot be raced by them. A token minted before the sid
      // was embedded in it has its session checked here instead.
      const revoked = await store.isRevoked({ ...(embeddedSid === record.sid ? {} : { sid: record.sid }), sub: record.sub, iat: record.issuedAt })
      if (revoked) throw gatewayError('JOTGATE_REFRESH_INVALID', { reason: 'session-revoked' })
      return issue(record.sub, record.sid, record.client, record.claims)
    },

    async logout (token, refreshToken) {
      const { jti, sid } = token.claims as { jti?: string, sid?: string }
      // A token without jti and sid (another issuer's) cannot be revoked:
      // refuse rather than answer a 204 that revoked nothing.
      if (jti === undefined && sid === undefined) throw gatewayError('JOTGATE_BAD_REQUEST', { reason: 'token-not-revocable' })
      if (jti !== undefined) await revoker.jti(jti, token.exp)
      if (sid !== undefined) await revoker.sid(sid)
      // Only this session's refresh token is spent: spending another one would
      // make its owner's next refresh look like reuse and end their session.
      // (This session's is dead anyway once its sid is revoked.)
      if (refreshToken !== undefined && sid !== undefined && sidOfRefreshToken(refreshToken) === sid) {
        await store.spendRefresh(refreshHash(refreshToken))
      }
    },

    async logoutAll (token) {
      const sub = token.claims.sub
      if (typeof sub !== 'string') throw gatewayError('JOTGATE_BAD_REQUEST', { reason: 'no-sub' })
      await revoker.sub(sub)
    }
  }
}
