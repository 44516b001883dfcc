/**
 * Keys of an outside issuer, fetched from its JWKS (or found through OIDC
 * discovery). Fetched at start, refreshed in the background before they go
 * stale, refetched when a token names an unknown kid: single-flight (one
 * fetch for every waiting request), at most once per cooldown, and a kid
 * that was not there stays "unknown" until the next allowed fetch, so a
 * flood of invented kids cannot hammer the provider (envoy#14557). While
 * the provider is down, cached keys keep working up to `maxStale`, across
 * reloads too. The cooldown counts from the last fetch an unknown kid caused,
 * so a rotation is picked up on first use even right after a refresh.
 *
 * The URL comes from the config only: nothing in a token (iss, jku, x5u)
 * ever decides what is fetched.
 */
import { createPublicKey } from 'node:crypto'
import type { Logger } from 'pino'
import type { Algorithm, TrustedIssuerConfig } from '../config/schema.js'
import { toMs } from '../config/duration.js'
import { gatewayError } from '../errors.js'
import { keyMismatch } from './material.js'
import { createVerifyKey, type IssuerKeys, type VerifyKey } from './key-table.js'

export type FetchOutcome = 'ok' | 'error' | 'invalid'

export interface RemoteIssuer extends IssuerKeys {
  /**
   * First fetch; resolves whatever the outcome (readiness reports it). When
   * this source already has usable keys from an earlier generation (a
   * reload), resolves at once and refetches in the background.
   */
  start: () => Promise<void>
  /** Undefined when usable keys are cached, else why not. */
  problem: () => string | undefined
  close: () => void
}

export interface RemoteIssuerOptions {
  log: Logger
  now?: () => number
  /** Told about every fetch, for metrics. */
  onFetch?: (issuer: string, outcome: FetchOutcome) => void
  /** Last good keys shared across reloads (default: one cache per `log`). */
  cache?: KeySourceCache
}

const MAX_BODY = 1 << 20
/** setTimeout's largest delay; a longer one fires at once (Node clamps it to 1 ms). */
const MAX_TIMER = 2 ** 31 - 1
/** Algorithms a JWK without `alg` can serve, by kty/crv. */
const CANDIDATES: Record<string, readonly Algorithm[]> = {
  RSA: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'],
  'EC:P-256': ['ES256'],
  'EC:P-384': ['ES384'],
  'EC:P-521': ['ES512'],
  'OKP:Ed25519': ['EdDSA']
}

/**
 * The last good keys of each key source (issuer, JWKS location and allowed
 * algorithms), shared by the generations of one gateway. A reload builds
 * new remote issuers; seeded from here they keep serving the cached keys
 * (up to maxStale) when the provider is down at reload time, and the reload
 * does not wait for a slow provider: the refetch runs in the background.
 * Public keys only; bounded.
 */
export type KeySourceCache = Map<string, { keys: Map<string, VerifyKey[]>, fetchedAt: number }>
const LAST_GOOD_MAX = 64
/**
 * Without an explicit `cache`, one per logger: every generation of a
 * gateway is built with the same root logger, while two gateways in one
 * process (tests) have their own and never share keys.
 */
const caches = new WeakMap<object, KeySourceCache>()
function cacheFor (options: RemoteIssuerOptions): KeySourceCache {
  if (options.cache !== undefined) return options.cache
  let cache = caches.get(options.log)
  if (cache === undefined) caches.set(options.log, cache = new Map())
  return cache
}

function sourceId (config: TrustedIssuerConfig): string {
  return JSON.stringify([config.issuer, config.jwksUri ?? null, config.discovery === true, [...config.algorithms].sort()])
}

export function createRemoteIssuer (config: TrustedIssuerConfig, options: RemoteIssuerOptions): RemoteIssuer {
  const now = options.now ?? Date.now
  const log = options.log.child({ issuer: config.issuer })
  const allowed = new Set<string>(config.algorithms)
  const ttl = toMs(config.cacheTtl)
  const maxStale = toMs(config.maxStale)
  const cooldown = toMs(config.cooldown)
  const timeout = toMs(config.fetchTimeout)

  const lastGood = cacheFor(options)
  const id = sourceId(config)
  const seed = lastGood.get(id)
  let keys = seed?.keys ?? new Map<string, VerifyKey[]>()
  let fetchedAt = seed?.fetchedAt ?? -Infinity
  /** Last fetch caused by an unknown kid: the cooldown counts from it (not from start or background refreshes). */
  let lastKidFetch = -Infinity
  let lastError: string | undefined = seed === undefined ? 'keys not fetched yet' : undefined
  let inFlight: Promise<void> | undefined
  let timer: NodeJS.Timeout | undefined
  let closed = false
  const none: VerifyKey[] = []

  const usable = () => now() - fetchedAt <= maxStale

  async function getJson (url: string, signal: AbortSignal): Promise<unknown> {
    const res = await fetch(url, { signal, headers: { accept: 'application/json' } })
    if (res.status !== 200) { await res.body?.cancel().catch(() => {}); throw new Error(`HTTP ${res.status} from ${url}`) }
    // Read at most MAX_BODY bytes: a huge answer is refused without being buffered whole.
    const chunks: Uint8Array[] = []
    let size = 0
    if (res.body !== null) {
      for await (const chunk of res.body) {
        size += chunk.byteLength
        if (size > MAX_BODY) { throw new Error(`${url} answered more than ${MAX_BODY} bytes`) }
        chunks.push(chunk)
      }
    }
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  }

  async function jwksUrl (signal: AbortSignal): Promise<string> {
    if (config.jwksUri !== undefined) return config.jwksUri
    const doc = await getJson(`${config.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, signal) as { issuer?: unknown, jwks_uri?: unknown } | null
    if (doc === null || typeof doc !== 'object') throw new InvalidJwks('the discovery document is not a JSON object')
    // OIDC Discovery section 4.3: the document must name the same issuer.
    if (doc.issuer !== config.issuer) throw new Error('discovery document names another issuer')
    if (typeof doc.jwks_uri !== 'string' || !/^https?:\/\//.test(doc.jwks_uri)) throw new Error('discovery document has no http(s) jwks_uri')
    return doc.jwks_uri
  }

  function fetchNow (): Promise<void> {
    inFlight ??= (async () => {
      // One deadline for the whole attempt (discovery document and JWKS).
      const signal = AbortSignal.timeout(timeout)
      try {
        const parsed = parseJwks(await getJson(await jwksUrl(signal), signal), allowed, log)
        if (parsed.size === 0) throw new InvalidJwks('the JWKS holds no usable signing key')
        keys = parsed
        fetchedAt = now()
        lastError = undefined
        lastGood.delete(id)
        lastGood.set(id, { keys, fetchedAt })
        if (lastGood.size > LAST_GOOD_MAX) lastGood.delete(lastGood.keys().next().value!)
        options.onFetch?.(config.issuer, 'ok')
      } catch (err) {
        // A JWKS that fails to fetch or parse never replaces a good cached one.
        lastError = (err as Error).message
        options.onFetch?.(config.issuer, err instanceof InvalidJwks || err instanceof SyntaxError ? 'invalid' : 'error')
        log.warn({ reason: 'jwks-fetch-failed', err: lastError }, 'JWKS fetch failed; cached keys kept')
      } finally {
        inFlight = undefined
      }
    })()
    return inFlight
  }

  function schedule (): void {
    // A generation closed (reloaded away) while its fetch was in flight must
    // not re-arm: its refreshes would go on for the life of the process.
    if (closed) return
    // Refresh at 80% of the TTL (and before the keys outlive maxStale),
    // sooner after a failure (bounded by cooldown).
    const delay = lastError === undefined ? Math.max(1000, Math.min(ttl, maxStale) * 0.8) : Math.max(1000, cooldown)
    timer = setTimeout(() => { void fetchNow().finally(schedule) }, Math.min(delay, MAX_TIMER))
    timer.unref()
  }

  function unavailable (): never {
    throw gatewayError('JOTGATE_KEYS_UNAVAILABLE', { reason: fetchedAt === -Infinity ? 'jwks-unreachable' : 'keys-stale' })
  }

  function lookup (kid: string, alg: string): VerifyKey | undefined {
    if (!usable()) return undefined
    const list = keys.get(kid)
    return list?.find((k) => k.alg === alg) ?? list?.[0]
  }

  return {
    issuer: config.issuer,
    audience: config.audience === undefined ? undefined : new Set(config.audience),
    // Undefined when no usable key has this kid: the verifier then calls
    // refresh(), which may refetch (rate limited) and decides 401 or 503;
    // keys past maxStale get one more (rate limited) chance that way too.
    byKid: (kid, alg) => lookup(kid, alg),
    byAlg: (alg) => {
      // With no usable key, say the source is down (503, CONTRACT section
      // 6) rather than "unknown key".
      if (!usable()) unavailable()
      const out: VerifyKey[] = []
      for (const list of keys.values()) for (const k of list) if (k.alg === alg) out.push(k)
      return out.length === 0 ? none : out
    },
    async refresh (kid, alg) {
      if (inFlight !== undefined) await inFlight
      else if (now() - lastKidFetch >= cooldown) {
        lastKidFetch = now()
        await fetchNow()
      }
      // Without kid the caller selects again among the refetched keys.
      const key = kid === undefined ? undefined : lookup(kid, alg)
      if (key !== undefined) return key
      // Source unreachable (or serving nothing usable) and no cached key
      // fits: 503; reachable without the kid: 401.
      if (lastError !== undefined || !usable()) unavailable()
      return undefined
    },
    async start () {
      if (seed !== undefined && usable()) {
        // Reloaded: serve the cached keys now, refetch in the background.
        void fetchNow().finally(schedule)
        return
      }
      await fetchNow()
      schedule()
    },
    problem: () => (usable() ? undefined : `keys of ${config.issuer} unavailable: ${lastError ?? 'stale'}`),
    close: () => {
      closed = true
      if (timer !== undefined) clearTimeout(timer)
    }
  }
}

class InvalidJwks extends Error {}

/** kid -> verify keys (one per algorithm the JWK may serve). */
function parseJwks (doc: unknown, allowed: ReadonlySet<string>, log: Logger): Map<string, VerifyKey[]> {
  const list = (doc as { keys?: unknown })?.keys
  if (!Array.isArray(list)) throw new InvalidJwks('the JWKS has no keys array')
  const out = new Map<string, VerifyKey[]>()
  for (const jwk of list as Record<string, unknown>[]) {
    if (jwk === null || typeof jwk !== 'object') continue
    // RFC 7517 4.2/4.3: only keys meant for verifying signatures.
    if (jwk.use !== undefined && jwk.use !== 'sig') continue
    // key_ops must be an array (RFC 7517 4.3); anything else is not a verify key.
    if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) continue
    if ('d' in jwk || jwk.kty === 'oct') continue
    const kid = typeof jwk.kid === 'string' ? jwk.kid : ''
    const candidates = CANDIDATES[jwk.kty === 'RSA' ? 'RSA' : `${String(jwk.kty)}:${String(jwk.crv)}`] ?? []
    // A published alg must be one this key type can serve (never HS* with a public key).
    const algs = typeof jwk.alg === 'string' ? candidates.filter((a) => a === jwk.alg) : candidates
    if (algs.length === 0) continue
    let key
    try {
      key = createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' })
    } catch {
      log.debug({ kid }, 'JWK skipped: not a readable public key')
      continue
    }
    for (const alg of algs) {
      if (!allowed.has(alg) || keyMismatch(alg, key) !== undefined) continue
      let verifyKey: VerifyKey
      try {
        verifyKey = createVerifyKey(kid, alg, key)
      } catch {
        log.debug({ kid, alg }, 'JWK skipped: no verifier for it')
        continue
      }
      out.set(kid, [...(out.get(kid) ?? []), verifyKey])
    }
  }
  return out
}
