/**
 * Prometheus metrics (prom-client), one registry per gateway. Every series
 * is prefixed `jotgate_`; labels are bounded: configured route paths (never
 * raw request paths), exact status codes, error codes from the catalogue.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { Store } from '../store/types.js'

export interface Metrics {
  registry: Registry
  request: (route: string, method: string, status: number, code: string | undefined, seconds: number) => void
  upstream: (route: string, seconds: number) => void
  login: (outcome: 'success' | 'failed' | 'rate_limited' | 'error') => void
  jwksFetch: (issuer: string, outcome: string) => void
  failOpen: () => void
  /** Where the open WebSocket count is read at each scrape. */
  countWebSockets: (count: () => number) => void
  /** A WebSocket closed by the gateway (expiry, revocation, store down, shutdown), by close code. */
  webSocketClosed: (code: number) => void
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/**
 * Default metrics of prom-client that are gauges named `_total`, against
 * the Prometheus naming rules (`promtool check metrics` flags them). Each
 * is the sum of the labelled gauge of the same name without `_total`
 * (`jotgate_nodejs_active_handles{type}` ...), so nothing is lost.
 */
const GAUGES_NAMED_TOTAL = ['jotgate_nodejs_active_handles_total', 'jotgate_nodejs_active_requests_total', 'jotgate_nodejs_active_resources_total']

export function createMetrics (): Metrics & { instrumentStore: (store: Store) => Store } {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'jotgate_' })
  for (const name of GAUGES_NAMED_TOTAL) registry.removeSingleMetric(name)
  const requests = new Counter({ name: 'jotgate_requests_total', help: 'Requests answered, by route, method and status', labelNames: ['route', 'method', 'status'], registers: [registry] })
  const refusals = new Counter({ name: 'jotgate_refusals_total', help: 'Requests refused by the gateway itself, by error code', labelNames: ['code'], registers: [registry] })
  const duration = new Histogram({ name: 'jotgate_request_duration_seconds', help: 'Whole request time in the gateway', labelNames: ['route'], buckets: LATENCY_BUCKETS, registers: [registry] })
  const upstream = new Histogram({ name: 'jotgate_upstream_duration_seconds', help: 'Time until the upstream answered with headers', labelNames: ['route'], buckets: LATENCY_BUCKETS, registers: [registry] })
  const storeDuration = new Histogram({ name: 'jotgate_store_duration_seconds', help: 'Store call time', labelNames: ['op'], buckets: LATENCY_BUCKETS, registers: [registry] })
  const storeErrors = new Counter({ name: 'jotgate_store_errors_total', help: 'Store calls that failed (unreachable, timeout)', labelNames: ['op'], registers: [registry] })
  const failOpen = new Counter({ name: 'jotgate_store_fail_open_total', help: 'Tokens let through unchecked while the store was down (store.onError: allow)', registers: [registry] })
  const jwks = new Counter({ name: 'jotgate_jwks_fetches_total', help: 'JWKS fetches of outside issuers, by outcome', labelNames: ['issuer', 'outcome'], registers: [registry] })
  const logins = new Counter({ name: 'jotgate_logins_total', help: 'Login attempts, by outcome', labelNames: ['outcome'], registers: [registry] })
  let openWebSockets: () => number = () => 0
  // Read at each scrape; registered on creation, so nothing else holds it.
  new Gauge({ name: 'jotgate_websocket_sessions', help: 'WebSocket connections open through the gateway', registers: [registry], collect () { this.set(openWebSockets()) } })
  const webSocketsClosed = new Counter({ name: 'jotgate_websocket_closed_total', help: 'WebSocket connections the gateway closed, by close code (4001 token expired, 4003 revoked, 1013 store unavailable, 1001 shutdown, 1008 not admitted after a reload)', labelNames: ['code'], registers: [registry] })
  const revocations = new Counter({ name: 'jotgate_revocations_total', help: 'Revocations written, by kind', labelNames: ['kind'], registers: [registry] })

  const requestChildren = new Map<string, { count: { inc: () => void }, duration: { observe: (v: number) => void } }>()
  const durationChildren = new Map<string, { observe: (v: number) => void }>()
  const upstreamChildren = new Map<string, { observe: (v: number) => void }>()
  const durationOf = (route: string) => {
    let c = durationChildren.get(route)
    if (c === undefined) durationChildren.set(route, c = duration.labels(route))
    return c
  }
  const upstreamOf = (route: string) => {
    let c = upstreamChildren.get(route)
    if (c === undefined) upstreamChildren.set(route, c = upstream.labels(route))
    return c
  }

  const instrumentStore = (store: Store): Store => {
    const timed = <A extends unknown[], R>(op: string, fn: (...args: A) => Promise<R>, after?: () => void) => {
      // Children bound once: no label hashing per call.
      const observe = storeDuration.labels(op)
      const failed = storeErrors.labels(op)
      return async (...args: A): Promise<R> => {
        const start = performance.now()
        try {
          const result = await fn(...args)
          after?.()
          return result
        } catch (err) {
          failed.inc()
          throw err
        } finally {
          observe.observe((performance.now() - start) / 1000)
        }
      }
    }
    return {
      ...store,
      isRevoked: timed('is_revoked', store.isRevoked),
      revokeJti: timed('revoke', store.revokeJti, () => revocations.inc({ kind: 'jti' })),
      revokeSid: timed('revoke', store.revokeSid, () => revocations.inc({ kind: 'sid' })),
      revokeSub: timed('revoke', store.revokeSub, () => revocations.inc({ kind: 'sub' })),
      subRevokedAt: timed('sub_revoked_at', store.subRevokedAt),
      putRefresh: timed('put_refresh', store.putRefresh),
      spendRefresh: timed('spend_refresh', store.spendRefresh),
      hit: timed('rate_limit', store.hit)
    }
  }

  return {
    registry,
    instrumentStore,
    request (route, method, status, code, seconds) {
      // Label children are cached by their values (all bounded): prom-client
      // would otherwise hash the label object on every request.
      const key = `${route}\u0000${method}\u0000${status}`
      let child = requestChildren.get(key)
      if (child === undefined) {
        child = { count: requests.labels(route, method, String(status)), duration: durationOf(route) }
        requestChildren.set(key, child)
      }
      child.count.inc()
      child.duration.observe(seconds)
      if (code !== undefined) refusals.labels(code).inc()
    },
    upstream: (route, seconds) => upstreamOf(route).observe(seconds),
    login: (outcome) => logins.inc({ outcome }),
    jwksFetch: (issuer, outcome) => jwks.inc({ issuer, outcome }),
    failOpen: () => failOpen.inc(),
    countWebSockets: (count) => { openWebSockets = count },
    webSocketClosed: (code) => webSocketsClosed.inc({ code: String(code) })
  }
}
