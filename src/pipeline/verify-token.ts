/**
 * Step 4: verification. The key is chosen by the exact `iss` and the `kid`;
 * the algorithm comes from the key, never from the token; `exp` is
 * required; time claims are checked with the clock tolerance and the
 * maximum lifetime. A bounded cache remembers tokens that passed, until
 * they expire: it only ever says "signature and claims were valid", so
 * revocation is still checked on every request. A token enters it on its
 * first verification while the cache has room, and on its second once it
 * is full (createDoorkeeper).
 */
import { LruMap } from 'toad-cache'
import { gatewayError, isGatewayError } from '../errors.js'
import type { IssuerKeys, KeyTable, VerifyKey } from '../keys/key-table.js'
import type { VerifiedToken } from './context.js'
import { decodeToken } from './decode-token.js'

export interface TokenVerifierOptions {
  keys: KeyTable
  /** Seconds. */
  clockTolerance: number
  /** Seconds. */
  maxLifetime: number
  maxTokenBytes: number
  /** Verified-token cache entries; 0 disables the cache. */
  cacheSize: number
  /** Milliseconds since the epoch; injected by tests. */
  now?: () => number
  /** Counted here, read by the metrics (every generation adds to the same). */
  counts?: VerificationCounts
}

/**
 * Verifications by outcome: `hit`, answered without a signature check of
 * its own (from the cache, or by a check already running for the same
 * token); `miss`, verified anew (a check, or a refusal before one).
 */
export interface VerificationCounts {
  hit: number
  miss: number
}

export type TokenVerifier = (token: string) => VerifiedToken | Promise<VerifiedToken>

interface CacheEntry {
  verified: VerifiedToken
  issuer: IssuerKeys
  key: VerifyKey
}

/** Claims that, when present, must be strings (they key revocation and identity). */
const STRING_CLAIMS = ['iss', 'sub', 'jti', 'sid', 'azp'] as const

export function createTokenVerifier (options: TokenVerifierOptions): TokenVerifier {
  const { keys, clockTolerance, maxLifetime, maxTokenBytes } = options
  const now = options.now ?? Date.now
  const cache = options.cacheSize > 0 ? new LruMap<CacheEntry>(options.cacheSize) : undefined
  const admit = cache === undefined ? undefined : createDoorkeeper()
  const counts = options.counts ?? { hit: 0, miss: 0 }

  // Tokens being verified off the main thread (a public-key signature on
  // the thread pool, a key refetch): requests carrying the same token
  // meanwhile wait for that one verification instead of starting their own.
  const inFlight = new Map<string, Promise<VerifiedToken>>()

  return function verifyToken (token) {
    const cached = cache?.get(token)
    // An entry lives until exp + tolerance, the moment the token would fail
    // anyway, and only while its key is still the one the issuer serves: a
    // key removed from a JWKS (or gone stale) stops its tokens at once.
    if (cached !== undefined) {
      if (now() / 1000 < cached.verified.exp + clockTolerance &&
        cached.issuer.byKid(cached.key.kid, cached.key.alg) === cached.key) {
        counts.hit++
        return cached.verified
      }
      // Expired, or its key is gone: the place goes to a token that can use it.
      cache!.delete(token)
    }
    const checking = inFlight.get(token)
    if (checking !== undefined) {
      counts.hit++
      return checking
    }
    counts.miss++
    const result = verifyUncached(token)
    if (!(result instanceof Promise)) return result
    const pending = result.finally(() => { inFlight.delete(token) })
    inFlight.set(token, pending)
    return pending
  }

  function verifyUncached (token: string): VerifiedToken | Promise<VerifiedToken> {
    const { header, payload, signature, signatureBytes } = decodeToken(token, maxTokenBytes)
    for (const claim of STRING_CLAIMS) {
      if (payload[claim] !== undefined && typeof payload[claim] !== 'string') {
        throw gatewayError('JOTGATE_TOKEN_MALFORMED', { reason: `${claim}-type` })
      }
    }
    const iss = payload.iss as string | undefined
    const issuer = iss === undefined ? undefined : keys.issuers.get(iss)
    if (issuer === undefined) throw gatewayError('JOTGATE_TOKEN_ISSUER', { reason: iss === undefined ? 'iss-missing' : 'iss-unknown' })
    const alg = header.alg as string
    const kid = header.kid as string | undefined
    const key = selectKey(issuer, kid, alg)
    const finish = (k: VerifyKey): VerifiedToken | Promise<VerifiedToken> => {
      // The header's alg must be the key's, case included: a key is never used
      // with another algorithm (HS256 with an RSA public key as the secret...).
      if (alg !== k.alg) throw gatewayError('JOTGATE_TOKEN_ALGORITHM', { reason: 'alg-mismatch' })
      // The signature first: a forged token is a signature refusal, whatever its claims say.
      const accept = (valid: boolean): VerifiedToken => {
        if (!valid) throw gatewayError('JOTGATE_TOKEN_SIGNATURE', { reason: 'signature' })
        const verified = checkClaims(k, payload, issuer)
        if (cache !== undefined && (cache.size < cache.max || admit!(token))) cache.set(token, { verified, issuer, key: k })
        return verified
      }
      const valid = checkSignature(token, signature, signatureBytes, k)
      return valid instanceof Promise ? valid.then(accept) : accept(valid)
    }
    const refresh = issuer.refresh
    if (kid === undefined && refresh !== undefined) {
      // A token without kid names no key, so a provider that replaced its
      // only key of this alg shows up as no key or a bad signature: one
      // rate-limited refetch decides, and only a different key is tried.
      const retry = (failed: unknown): Promise<VerifiedToken> => refresh(undefined, alg).then(() => {
        const k = selectKey(issuer, undefined, alg)
        if (k === undefined || k === key) throw failed ?? gatewayError('JOTGATE_TOKEN_KEY_UNKNOWN', { reason: 'kid-missing' })
        return finish(k)
      })
      if (key === undefined) return retry(undefined)
      const onFailure = (err: unknown): Promise<VerifiedToken> => {
        if (!isGatewayError(err) || err.code !== 'JOTGATE_TOKEN_SIGNATURE') throw err
        return retry(err)
      }
      try {
        const result = finish(key)
        return result instanceof Promise ? result.catch(onFailure) : result
      } catch (err) {
        return onFailure(err)
      }
    }
    if (key !== undefined) return finish(key)
    if (kid !== undefined && refresh !== undefined) {
      // A remote issuer may have rotated: one rate-limited refetch decides.
      return refresh(kid, alg).then((k) => {
        if (k === undefined) throw gatewayError('JOTGATE_TOKEN_KEY_UNKNOWN', { reason: 'kid-unknown' })
        return finish(k)
      })
    }
    throw gatewayError('JOTGATE_TOKEN_KEY_UNKNOWN', { reason: kid === undefined ? 'kid-missing' : 'kid-unknown' })
  }

  /** Whether the key signed the token (a promise when the check runs on libuv's thread pool). */
  function checkSignature (token: string, signature: string, bytes: Buffer, key: VerifyKey): boolean | Promise<boolean> {
    const input = token.slice(0, token.length - signature.length - 1)
    let valid: boolean | Promise<boolean>
    try {
      valid = key.verifySignature(input, bytes)
    } catch (cause) {
      throw signatureFailure(cause)
    }
    return valid instanceof Promise ? valid.catch((cause: unknown) => { throw signatureFailure(cause) }) : valid
  }

  function checkClaims (key: VerifyKey, payload: Record<string, unknown>, issuer: IssuerKeys): VerifiedToken {
    const t = now() / 1000
    const exp = timeClaim(payload, 'exp')
    const nbf = timeClaim(payload, 'nbf')
    const iat = timeClaim(payload, 'iat')
    if (exp === undefined) throw gatewayError('JOTGATE_TOKEN_MALFORMED', { reason: 'exp-missing' })
    if (t >= exp + clockTolerance) throw gatewayError('JOTGATE_TOKEN_EXPIRED', { reason: 'exp' })
    if (nbf !== undefined && t < nbf - clockTolerance) throw gatewayError('JOTGATE_TOKEN_NOT_YET_VALID', { reason: 'nbf' })
    if (iat !== undefined && t < iat - clockTolerance) throw gatewayError('JOTGATE_TOKEN_NOT_YET_VALID', { reason: 'iat-future' })
    if (exp - (iat ?? t) > maxLifetime) throw gatewayError('JOTGATE_TOKEN_LIFETIME', { reason: 'lifetime' })
    if (issuer.audience !== undefined && !audienceMatches(payload.aud, issuer.audience)) {
      throw gatewayError('JOTGATE_TOKEN_AUDIENCE', { reason: 'aud' })
    }
    return { claims: payload, iss: issuer.issuer, kid: key.kid, exp, mapped: undefined }
  }
}

/**
 * Admission to a full verified-token cache: true for a token seen before
 * (since the last reset), false the first time. A token used once (a
 * per-request token, a client that never reuses one) then never enters
 * the cache, where it would evict a token in use and cost an entry that
 * lives long enough for V8 to promote it and a full collection to free it:
 * with every request carrying a new HS256 token, the cache made a request
 * cost 10-20 µs more than no cache at all (README, Performance). A token in
 * use pays one more signature check, on its second request. While the
 * cache has room nothing is evicted, so every verified token goes in at
 * once and this is not asked.
 *
 * One bit per token, at an index hashed from its last 16 characters (the
 * end of its signature, which a forger cannot choose for a token that
 * verifies); when an eighth of the bits are set they are all cleared, so
 * at most one token in eight is let in on its first sight. No allocation
 * per call; 128 KiB for 2^20 bits.
 */
export function createDoorkeeper (bits = 1 << 20): (token: string) => boolean {
  if (bits < 32 || (bits & (bits - 1)) !== 0) throw new RangeError('bits: a power of two, at least 32')
  const words = new Uint32Array(bits / 32)
  const mask = bits - 1
  const limit = bits / 8
  let set = 0
  return (token) => {
    // FNV-1a over the last 16 characters.
    let h = 0x811c9dc5
    for (let i = Math.max(0, token.length - 16); i < token.length; i++) h = Math.imul(h ^ token.charCodeAt(i), 0x01000193)
    const bit = (h >>> 0) & mask
    const word = bit >>> 5
    const flag = 1 << (bit & 31)
    if ((words[word]! & flag) !== 0) return true
    if (set >= limit) {
      words.fill(0)
      set = 0
    }
    words[word]! |= flag
    set++
    return false
  }
}

/**
 * A signature check that threw: node:crypto refused the bytes (an ECDSA
 * signature of the wrong length, say). The token is well formed and its
 * signature simply does not verify with this key.
 */
function signatureFailure (cause: unknown): Error {
  return gatewayError('JOTGATE_TOKEN_SIGNATURE', { reason: 'signature', cause })
}

function selectKey (issuer: IssuerKeys, kid: string | undefined, alg: string): VerifyKey | undefined {
  if (kid !== undefined) return issuer.byKid(kid, alg)
  // Without kid the key is unambiguous only when exactly one has this alg.
  const candidates = issuer.byAlg(alg)
  if (candidates.length === 1) return candidates[0]
  if (candidates.length > 1) throw gatewayError('JOTGATE_TOKEN_KEY_UNKNOWN', { reason: 'kid-ambiguous' })
  return undefined
}

/** A NumericDate (RFC 7519 section 2): a finite number, or absent. */
function timeClaim (payload: Record<string, unknown>, name: string): number | undefined {
  const value = payload[name]
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isFinite(value)) throw gatewayError('JOTGATE_TOKEN_MALFORMED', { reason: `${name}-type` })
  return value
}

function audienceMatches (aud: unknown, accepted: ReadonlySet<string>): boolean {
  if (typeof aud === 'string') return accepted.has(aud)
  if (Array.isArray(aud)) return aud.some((a) => typeof a === 'string' && accepted.has(a))
  return false
}
