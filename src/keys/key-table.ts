/**
 * The key table: issuer -> keys, built once at boot from the frozen config.
 * Each key owns an eager fast-jwt verifier pinned to the key's one
 * algorithm, so a token can never choose how it is checked (RFC 8725
 * section 3.1). Lookups on the hot path are Map reads.
 */
import type { KeyObject } from 'node:crypto'
import { createVerifier } from 'fast-jwt'
import type { Algorithm, GatewayConfig } from '../config/schema.js'
import { ConfigError } from '../config/problems.js'
import { loadKeyMaterial, type KeyMaterial } from './material.js'
import { createRemoteIssuer, type RemoteIssuer, type RemoteIssuerOptions } from './jwks-source.js'

export interface VerifyKey {
  kid: string
  alg: Algorithm
  /** Verifies the signature of the compact token; throws fast-jwt's TokenError. */
  verifySignature: (token: string) => void
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

/** A verifier of `alg` with `key`, built eagerly. */
export function createVerifyKey (kid: string, alg: Algorithm, key: KeyObject): VerifyKey {
  const material = key.type === 'secret' ? key.export() : key.export({ type: 'spki', format: 'pem' })
  // Claims (exp, nbf, iss, aud, ...) are checked by the pipeline with its own
  // clock; fast-jwt checks only that this key signed the token with `alg`.
  const verify = createVerifier({ key: material, algorithms: [alg], ignoreExpiration: true, ignoreNotBefore: true, cache: false })
  return { kid, alg, verifySignature: (token) => { verify(token) } }
}

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
