/**
 * The key table: issuer -> keys, built once at boot from the frozen config.
 * Each key is pinned to its one algorithm, so a token can never choose how
 * it is checked (RFC 8725 section 3.1). Lookups on the hot path are Map
 * reads.
 */
import { constants, verify, type KeyObject, type VerifyKeyObjectInput } from 'node:crypto'
import type { Algorithm, GatewayConfig } from '../config/schema.js'
import { ConfigError } from '../config/problems.js'
import { keyMismatch, loadKeyMaterial, type KeyMaterial } from './material.js'
import { hmacVerifier, type HmacAlgorithm } from './hmac.js'
import { createRemoteIssuer, type RemoteIssuer, type RemoteIssuerOptions } from './jwks-source.js'

export interface VerifyKey {
  kid: string
  alg: Algorithm
  /**
   * Whether `signature` (the bytes of the token's third segment) signs
   * `input` (the token up to its last dot) with this key and `alg`: at once for an HMAC,
   * as a promise for a public key (checked on libuv's thread pool). Throws
   * or rejects for bytes node:crypto refuses.
   */
  verifySignature: (input: string, signature: Buffer) => boolean | Promise<boolean>
}

/** Keys of one issuer, with the audience its tokens must name. */
export interface IssuerKeys {
  issuer: string
  /** Accepted `aud` values; undefined: `aud` unchecked. */
  audience: ReadonlySet<string> | undefined
  /** The key named `kid` (for `alg` when the kid has several); may throw JOTGATE_KEYS_UNAVAILABLE. */
  byKid: (kid: string, alg: string) => VerifyKey | undefined
  /** Keys of this issuer pinned to `alg` (for tokens without `kid`). */
  byAlg: (alg: string) => readonly VerifyKey[]
  /**
   * Remote issuers only: called when a `kid` is not known yet. Resolves to
   * the key after a (rate limited) refetch, or undefined; rejects with
   * JOTGATE_KEYS_UNAVAILABLE when the source is unreachable. For a token
   * without `kid` (undefined: no key has its alg, or the only one does not
   * verify it) it only refetches, resolving to undefined, and the caller
   * selects again through byAlg.
   */
  refresh?: (kid: string | undefined, alg: string) => Promise<VerifyKey | undefined>
}

export interface KeyTable {
  issuers: ReadonlyMap<string, IssuerKeys>
  /** Issuers whose keys come from a JWKS: started, reported and closed with the generation. */
  remotes: readonly RemoteIssuer[]
  /** Every local key, in config order. */
  local: readonly KeyMaterial[]
  /** The key with `sign: true`, if any. */
  signing: KeyMaterial | undefined
}

/**
 * A verifier of `alg` with `key`; throws when the key cannot serve `alg`.
 *
 * HMAC: at once, on the main thread (hmac.ts: the key's padded blocks
 * made here, two one-shot hashes per check), on the parts the pipeline
 * has already decoded (decode-token.ts). fast-jwt's verifier would decode
 * the token a second time and run claim checks the pipeline does itself
 * with its own clock: on a verified-token cache miss that was about half
 * of the verification's cost.
 *
 * Public keys: node:crypto's verify with a callback, which runs the check
 * on libuv's thread pool. An RSA, ECDSA or Ed25519 check costs 5 to 25
 * times an HMAC; on the main thread it held up every other request for
 * that long, off it the gateway's other cores do it (fast-jwt verifies
 * only synchronously). The JWS forms map to node's as RFC 7518 defines
 * them: ES* signatures are R || S (ieee-p1363), PS* use PSS with a salt
 * as long as the hash. Past POOL_CHECKS checks waiting at once, a check
 * runs on the main thread (see there).
 */
export function createVerifyKey (kid: string, alg: Algorithm, key: KeyObject): VerifyKey {
  const mismatch = keyMismatch(alg, key)
  if (mismatch !== undefined) throw new TypeError(`key ${kid}: ${mismatch}`)
  if (alg.startsWith('HS')) {
    const check = hmacVerifier(alg as HmacAlgorithm, key)
    return { kid, alg, verifySignature: check }
  }
  const hash = alg === 'EdDSA' ? null : `sha${alg.slice(2)}`
  const keyInput: KeyObject | VerifyKeyObjectInput = alg.startsWith('ES')
    ? { key, dsaEncoding: 'ieee-p1363' }
    : alg.startsWith('PS') ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST } : key
  return {
    kid,
    alg,
    verifySignature: (input, signature) => {
      const data = Buffer.from(input)
      if (poolChecks >= POOL_CHECKS) return verify(hash, data, keyInput, signature)
      poolChecks++
      return new Promise((resolve, reject) => {
        verify(hash, data, keyInput, signature, (err, valid) => {
          poolChecks--
          if (err === null) resolve(valid)
          else reject(err)
        })
      })
    }
  }
}

/**
 * Public-key checks waiting on or running in the thread pool at most, for
 * the whole process. The pool (UV_THREADPOOL_SIZE threads, 4 by default)
 * also runs DNS lookups (new upstream connections, JWKS fetches) and file
 * reads: past this many, a check runs on the main thread instead, so a
 * flood of new or forged tokens slows the main thread (and with it the
 * intake of more requests), as every check did before, and never queues a
 * lookup behind thousands of checks: at 64 ECDSA checks of ~130 us on four
 * threads, about 2 ms.
 */
export const POOL_CHECKS = 16 * (Number(process.env.UV_THREADPOOL_SIZE) || 4)
let poolChecks = 0

/** Builds a fixed set of keys into lookup maps. */
export function createStaticIssuer (issuer: string, audience: readonly string[] | undefined, keys: readonly VerifyKey[]): IssuerKeys {
  const byKid = new Map(keys.map((k) => [k.kid, k]))
  const byAlg = new Map<string, VerifyKey[]>()
  for (const k of keys) byAlg.set(k.alg, [...(byAlg.get(k.alg) ?? []), k])
  const none: VerifyKey[] = []
  return {
    issuer,
    audience: audience === undefined ? undefined : new Set(audience),
    byKid: (kid) => byKid.get(kid),
    byAlg: (alg) => byAlg.get(alg) ?? none
  }
}

/**
 * Builds the key table: local keys under `tokens.issuer`, and one remote
 * source per trusted issuer (not started: see RemoteIssuer.start). Throws
 * ConfigError when a local key is unusable.
 */
export function createKeyTable (config: GatewayConfig, remote?: RemoteIssuerOptions): KeyTable {
  const { keys, problems } = loadKeyMaterial(config.tokens.keys)
  if (problems.length > 0) throw new ConfigError(problems)
  const issuers = new Map<string, IssuerKeys>()
  if (config.tokens.issuer !== undefined && keys.length > 0) {
    const verifyKeys = keys.map((k) => createVerifyKey(k.kid, k.alg, k.verifyKey))
    issuers.set(config.tokens.issuer, createStaticIssuer(config.tokens.issuer, config.tokens.audience, verifyKeys))
  }
  const remotes = remote === undefined ? [] : config.tokens.trustedIssuers.map((ti) => createRemoteIssuer(ti, remote))
  for (const r of remotes) issuers.set(r.issuer, r)
  return { issuers, remotes, local: keys, signing: keys.find((k) => k.sign) }
}
