/**
 * Keys of an outside issuer, fetched from its JWKS (or found through OIDC
 * discovery). Fetched at start, refreshed in the background before they go
 * stale, refetched when a token names an unknown kid: single-flight (one
 * fetch for every waiting request), at most once per cooldown, and a kid
 * that was not there stays "unknown" until the next allowed fetch, so a
 * flood of invented kids cannot hammer the provider (envoy#14557). While
 * the provider is down, cached keys keep working up to `maxStale`.
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
  /** First fetch; resolves whatever the outcome (readiness reports it). */
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
}

const MAX_BODY = 1 << 20
/** Algorithms a JWK without `alg` can serve, by kty/crv. */
const CANDIDATES: Record<string, readonly Algorithm[]> = {
  RSA: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'],
  'EC:P-256': ['ES256'],
  'EC:P-384': ['ES384'],
  'EC:P-521': ['ES512'],
  'OKP:Ed25519': ['EdDSA']
}

export function createRemoteIssuer (config: TrustedIssuerConfig, options: RemoteIssuerOptions): RemoteIssuer {
  const now = options.now ?? Date.now
  const log = options.log.child({ issuer: config.issuer })
  const allowed = new Set<string>(config.algorithms)
  const ttl = toMs(config.cacheTtl)
  const maxStale = toMs(config.maxStale)
  const cooldown = toMs(config.cooldown)
  const timeout = toMs(config.fetchTimeout)

  let keys = new Map<string, VerifyKey[]>()
  let fetchedAt = -Infinity
  let lastAttempt = -Infinity
  let lastError: string | undefined = 'keys not fetched yet'
  let inFlight: Promise<void> | undefined
  let timer: NodeJS.Timeout | undefined
  const none: VerifyKey[] = []

  const usable = () => now() - fetchedAt <= maxStale

  async function getJson (url: string): Promise<unknown> {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeout), headers: { accept: 'application/json' } })
    if (res.status !== 200) { await res.body?.cancel(); throw new Error(`HTTP ${res.status} from ${url}`) }
    const text = await res.text()
    if (text.length > MAX_BODY) throw new Error(`${url} answered more than ${MAX_BODY} bytes`)
    return JSON.parse(text)
  }

  async function jwksUrl (): Promise<string> {
    if (config.jwksUri !== undefined) return config.jwksUri
    const doc = await getJson(`${config.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`) as { issuer?: unknown, jwks_uri?: unknown }
    // OIDC Discovery section 4.3: the document must name the same issuer.
    if (doc.issuer !== config.issuer) throw new Error('discovery document names another issuer')
    if (typeof doc.jwks_uri !== 'string' || !/^https?:\/\//.test(doc.jwks_uri)) throw new Error('discovery document has no http(s) jwks_uri')
    return doc.jwks_uri
  }

  function fetchNow (): Promise<void> {
    inFlight ??= (async () => {
      lastAttempt = now()
      try {
        const parsed = parseJwks(await getJson(await jwksUrl()), allowed, log)
        if (parsed.size === 0) throw new InvalidJwks('the JWKS holds no usable signing key')
        keys = parsed
        fetchedAt = now()
        lastError = undefined
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
    // Refresh at 80% of the TTL, sooner after a failure (bounded by cooldown).
    const delay = lastError === undefined ? Math.max(1000, ttl * 0.8) : Math.max(1000, cooldown)
    timer = setTimeout(() => { fetchNow().finally(schedule) }, delay)
    timer.unref()
  }

  function lookup (kid: string, alg: string): VerifyKey | undefined {
    if (!usable()) return undefined
    const list = keys.get(kid)
    return list?.find((k) => k.alg === alg) ?? list?.[0]
  }

  return {
    issuer: config.issuer,
    audience: config.audience === undefined ? undefined : new Set(config.audience),
    byKid: (kid, alg) => {
      const key = lookup(kid, alg)
      if (key === undefined && !usable() && fetchedAt !== -Infinity) throw gatewayError('JOTGATE_KEYS_UNAVAILABLE', { reason: 'keys-stale' })
      return key
    },
    byAlg: (alg) => {
      if (!usable()) return none
      const out: VerifyKey[] = []
      for (const list of keys.values()) for (const k of list) if (k.alg === alg) out.push(k)
      return out
    },
    async refresh (kid, alg) {
      if (inFlight === undefined && now() - lastAttempt >= cooldown) await fetchNow()
      else if (inFlight !== undefined) await inFlight
      const key = lookup(kid, alg)
      if (key !== undefined) return key
      // Source unreachable and no cached key fits: 503; reachable without the kid: 401.
      if (lastError !== undefined) throw gatewayError('JOTGATE_KEYS_UNAVAILABLE', { reason: 'jwks-unreachable' })
      return undefined
    },
    async start () {
      await fetchNow()
      schedule()
    },
    problem: () => (usable() ? undefined : `keys of ${config.issuer} unavailable: ${lastError ?? 'stale'}`),
    close: () => { if (timer !== undefined) clearTimeout(timer) }
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
    if (Array.isArray(jwk.key_ops) && !jwk.key_ops.includes('verify')) continue
    if ('d' in jwk || jwk.kty === 'oct') continue
    const kid = typeof jwk.kid === 'string' ? jwk.kid : ''
    const algs = typeof jwk.alg === 'string' ? [jwk.alg] : (CANDIDATES[jwk.kty === 'RSA' ? 'RSA' : `${String(jwk.kty)}:${String(jwk.crv)}`] ?? [])
    let key
    try {
      key = createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' })
    } catch {
      log.debug({ kid }, 'JWK skipped: not a readable public key')
      continue
    }
    for (const alg of algs) {
      if (!allowed.has(alg) || keyMismatch(alg as Algorithm, key) !== undefined) continue
      out.set(kid, [...(out.get(kid) ?? []), createVerifyKey(kid, alg as Algorithm, key)])
    }
  }
  return out
}
