/**
 * Prometheus metrics (prom-client), one registry per gateway. Every series
 * is prefixed `jotgate_`; labels are bounded: configured route paths (never
 * raw request paths), exact status codes, error codes from the catalogue.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { Store } from '../store/types.js'
import type { VerificationCounts } from '../pipeline/verify-token.js'

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
  /** Token verifications, counted by the verifier in plain numbers and read at each scrape. */
  verifications: VerificationCounts
}

const LATENCY_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

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
  // The series every request touches are counted in plain numbers on the
  // request path and handed to prom-client only when scraped (see
  // RequestHistogram): its own inc()/observe() build and hash a label
  // object per call.
  const requestCells = new Map<string, Map<string, Map<number, RequestCell>>>()
  const requests = new Counter({
    name: 'jotgate_requests_total',
    help: 'Requests answered, by route, method and status',
    labelNames: ['route', 'method', 'status'],
    registers: [registry],
    collect () {
      for (const byMethod of requestCells.values()) {
        for (const byStatus of byMethod.values()) {
          for (const cell of byStatus.values()) {
            if (cell.pending === 0) continue
            this.inc(cell.labels, cell.pending)
            cell.pending = 0
          }
        }
      }
    }
  })
  const refusals = new Counter({ name: 'jotgate_refusals_total', help: 'Requests refused by the gateway itself, by error code', labelNames: ['code'], registers: [registry] })
  const duration = new RequestHistogram({ name: 'jotgate_request_duration_seconds', help: 'Whole request time in the gateway', label: 'route', buckets: LATENCY_BUCKETS, registers: [registry] })
  const upstream = new RequestHistogram({ name: 'jotgate_upstream_duration_seconds', help: 'Time until the upstream answered with headers', label: 'route', buckets: LATENCY_BUCKETS, registers: [registry] })
  const storeDuration = new Histogram({ name: 'jotgate_store_duration_seconds', help: 'Store call time', labelNames: ['op'], buckets: [...LATENCY_BUCKETS], registers: [registry] })
  const storeErrors = new Counter({ name: 'jotgate_store_errors_total', help: 'Store calls that failed (unreachable, timeout)', labelNames: ['op'], registers: [registry] })
  const failOpen = new Counter({ name: 'jotgate_store_fail_open_total', help: 'Tokens let through unchecked while the store was down (store.onError: allow)', registers: [registry] })
  const jwks = new Counter({ name: 'jotgate_jwks_fetches_total', help: 'JWKS fetches of outside issuers, by outcome', labelNames: ['issuer', 'outcome'], registers: [registry] })
  const logins = new Counter({ name: 'jotgate_logins_total', help: 'Login attempts, by outcome', labelNames: ['outcome'], registers: [registry] })
  let openWebSockets: () => number = () => 0
  // Read at each scrape; registered on creation, so nothing else holds it.
  new Gauge({ name: 'jotgate_websocket_sessions', help: 'WebSocket connections open through the gateway', registers: [registry], collect () { this.set(openWebSockets()) } })
  const webSocketsClosed = new Counter({ name: 'jotgate_websocket_closed_total', help: 'WebSocket connections the gateway closed, by close code (4001 token expired, 4003 revoked, 1013 store unavailable, 1001 shutdown, 1008 not admitted after a reload)', labelNames: ['code'], registers: [registry] })
  const revocations = new Counter({ name: 'jotgate_revocations_total', help: 'Revocations written, by kind', labelNames: ['kind'], registers: [registry] })
  // Counted by the verifier on the request path (two plain numbers), handed
  // over at each scrape.
  const verifications: VerificationCounts = { hit: 0, miss: 0 }
  const reported: VerificationCounts = { hit: 0, miss: 0 }
  new Counter({
    name: 'jotgate_token_verifications_total',
    help: 'Token verifications: hit, answered from the verified-token cache (or a check running for the same token); miss, verified anew',
    labelNames: ['result'],
    registers: [registry],
    collect () {
      for (const result of ['hit', 'miss'] as const) {
        this.inc({ result }, verifications[result] - reported[result])
        reported[result] = verifications[result]
      }
    }
  })

  const requestCell = (route: string, method: string, status: number): RequestCell => {
    let byMethod = requestCells.get(route)
    if (byMethod === undefined) requestCells.set(route, byMethod = new Map())
    let byStatus = byMethod.get(method)
    if (byStatus === undefined) byMethod.set(method, byStatus = new Map())
    let cell = byStatus.get(status)
    if (cell === undefined) {
      cell = { labels: { route, method, status: String(status) }, pending: 0, duration: duration.cell(route) }
      byStatus.set(status, cell)
    }
    return cell
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
      // Label values are bounded (configured routes, methods, status codes).
      const cell = requestCell(route, method, status)
      cell.pending++
      cell.duration.observe(seconds)
      if (code !== undefined) refusals.labels(code).inc()
    },
    upstream: (route, seconds) => upstream.cell(route).observe(seconds),
    login: (outcome) => logins.inc({ outcome }),
    jwksFetch: (issuer, outcome) => jwks.inc({ issuer, outcome }),
    failOpen: () => failOpen.inc(),
    countWebSockets: (count) => { openWebSockets = count },
    webSocketClosed: (code) => webSocketsClosed.inc({ code: String(code) }),
    verifications
  }
}

interface RequestCell {
  labels: { route: string, method: string, status: string }
  /** Counted since the last scrape. */
  pending: number
  duration: BucketCounts
}

/** One label value's observations: per-bucket counts (not cumulative), sum, count. */
class BucketCounts {
  readonly counts: Float64Array
  sum = 0
  count = 0
  constructor (readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length)
  }

  observe (value: number): void {
    // prom-client throws on these; here they would poison the sum for good.
    if (!Number.isFinite(value)) return
    const bounds = this.bounds
    let i = 0
    while (i < bounds.length && value > bounds[i]!) i++
    if (i < bounds.length) this.counts[i]!++
    this.sum += value
    this.count++
  }
}

type HistogramValues = Awaited<ReturnType<Histogram<string>['get']>>

/**
 * A prom-client histogram with one label whose observations go to plain
 * counters (`cell(value).observe(seconds)`: no label object, no hash), read
 * into prom-client's exposition format when the registry is scraped. Its
 * inherited labels()/observe() are not used.
 */
export class RequestHistogram<L extends string> extends Histogram<L> {
  readonly #name: string
  readonly #help: string
  readonly #label: L
  readonly #bounds: readonly number[]
  readonly #cells = new Map<string, BucketCounts>()

  constructor ({ name, help, label, buckets, registers }: { name: string, help: string, label: L, buckets: readonly number[], registers: Registry[] }) {
    super({ name, help, labelNames: [label], buckets: [...buckets], registers })
    this.#name = name
    this.#help = help
    this.#label = label
    this.#bounds = [...buckets].sort((a, b) => a - b)
  }

  /** The counters of one label value, made on first use and kept (label values are bounded). */
  cell (value: string): BucketCounts {
    let cell = this.#cells.get(value)
    if (cell === undefined) this.#cells.set(value, cell = new BucketCounts(this.#bounds))
    return cell
  }

  override async get (): Promise<HistogramValues> {
    const values: HistogramValues['values'] = []
    for (const [value, cell] of this.#cells) {
      const labels = { [this.#label]: value }
      let cumulative = 0
      for (let i = 0; i < this.#bounds.length; i++) {
        cumulative += cell.counts[i]!
        values.push({ metricName: `${this.#name}_bucket`, labels: { le: this.#bounds[i]!, ...labels }, value: cumulative })
      }
      values.push({ metricName: `${this.#name}_bucket`, labels: { le: '+Inf', ...labels }, value: cell.count })
      values.push({ metricName: `${this.#name}_sum`, labels, value: cell.sum })
      values.push({ metricName: `${this.#name}_count`, labels, value: cell.count })
    }
    // The shape prom-client's own get() returns (its typings also list a
    // `collect` that the object does not carry).
    return { name: this.#name, help: this.#help, type: 'histogram', aggregator: 'sum', values } as unknown as HistogramValues
  }

  /** What the registry reads for the text format (prom-client prefers it to get()). */
  async getForPromString (): Promise<HistogramValues> {
    return await this.get()
  }

  override reset (): void {
    super.reset()
    // prom-client's constructor calls reset() before this class's fields exist.
    if (!(#cells in this)) return
    for (const cell of this.#cells.values()) {
      cell.counts.fill(0)
      cell.sum = 0
      cell.count = 0
    }
  }
}
