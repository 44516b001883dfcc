/**
 * config/grafana-dashboard.json is built on the series jotgate really
 * exposes: every metric name its PromQL queries (panel targets and
 * template variables) is registered by createMetrics(), so a renamed
 * metric cannot leave a silently empty panel behind. And every
 * gateway-specific metric has a panel.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { createMetrics } from '../../../src/admin/metrics.js'
import { ROOT } from '../../helpers/root.js'

const file = join(ROOT, 'config', 'grafana-dashboard.json')
const dashboard = JSON.parse(readFileSync(file, 'utf8')) as Dashboard

interface Target { expr?: string, refId?: string }
interface Panel { type: string, title?: string, id?: number, targets?: Target[], panels?: Panel[], gridPos?: { h: number, w: number, x: number, y: number } }
interface Variable { name: string, type: string, query?: string | { query?: string } }
interface Dashboard { schemaVersion: number, uid: string, title: string, panels: Panel[], templating: { list: Variable[] } }

const HISTOGRAM_SUFFIX = /_(bucket|sum|count)$/

function allPanels (panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])])
}

/** Every PromQL expression: panel targets and query variables. */
function expressions (d: Dashboard): string[] {
  const exprs = allPanels(d.panels).flatMap((p) => (p.targets ?? []).map((target) => target.expr ?? ''))
  for (const v of d.templating.list) {
    if (v.type !== 'query') continue
    exprs.push(typeof v.query === 'string' ? v.query : v.query?.query ?? '')
  }
  return exprs
}

t.test('the dashboard is a Grafana dashboard', async (t) => {
  t.ok(dashboard.schemaVersion >= 36 && dashboard.schemaVersion <= 41, `schemaVersion ${dashboard.schemaVersion}`)
  t.match(dashboard.uid, /^[a-zA-Z0-9_-]{1,40}$/)
  t.ok(dashboard.title.length > 0)
  const panels = allPanels(dashboard.panels)
  const ids = panels.map((p) => p.id)
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique')
  for (const p of panels) {
    t.ok(p.gridPos !== undefined && p.gridPos.x + p.gridPos.w <= 24, `${p.title ?? p.type} fits the 24-column grid`)
    if (p.type === 'row') continue
    t.ok((p.targets ?? []).length > 0, `${p.title ?? p.type} has queries`)
    for (const target of p.targets ?? []) t.ok((target.expr ?? '').trim().length > 0, `${p.title ?? p.type} ${target.refId ?? ''}: non-empty expr`)
  }
  const titles = panels.map((p) => p.title ?? '')
  for (const wanted of ['Requests by route and status', 'Refusals by code', 'Request latency', 'Upstream latency', 'Store latency',
    'Store errors', 'JWKS fetches by outcome', 'Logins by outcome', 'Revocations written', 'Resident memory', 'CPU']) {
    t.ok(titles.some((title) => title.startsWith(wanted)), `panel "${wanted}"`)
  }
})

t.test('every metric the dashboard queries is registered', async (t) => {
  const { registry } = createMetrics()
  const registered = new Map((await registry.getMetricsAsJSON()).map((m) => [m.name, String(m.type)]))
  const exprs = expressions(dashboard)
  t.ok(exprs.length >= 15, `${exprs.length} expressions`)

  const queried = new Set<string>()
  for (const expr of exprs) {
    for (const [name] of expr.matchAll(/jotgate_[a-z0-9_]+/g)) {
      // `x_bucket`, `x_sum` and `x_count` are series of the histogram `x`.
      const base = name.replace(HISTOGRAM_SUFFIX, '')
      queried.add(registered.get(base) === 'histogram' ? base : name)
    }
  }
  t.ok(queried.size >= 10, `${queried.size} distinct metrics queried`)
  for (const name of queried) t.ok(registered.has(name), `${name} is registered in createMetrics()`)

  // Quantiles are computed from buckets, over histograms only.
  for (const expr of exprs.filter((e) => e.includes('histogram_quantile'))) {
    const buckets = [...expr.matchAll(/(jotgate_[a-z0-9_]+)_bucket\b/g)].map((m) => m[1]!)
    t.ok(buckets.length > 0 && buckets.every((b) => registered.get(b) === 'histogram'), `histogram_quantile over a histogram: ${expr}`)
    t.match(expr, /\bby \([^)]*\ble\b/, 'keeps the le label')
  }
  // Counters are only read through rate() or increase().
  for (const expr of exprs) {
    for (const m of expr.matchAll(/jotgate_[a-z0-9_]+_total\b/g)) {
      const before = expr.slice(0, m.index)
      if (/label_values\($/.test(before)) continue
      t.match(before, /(rate|increase)\($/, `counter ${m[0]} is wrapped in rate()/increase() in: ${expr}`)
    }
  }
})

t.test('every gateway metric has a panel', async (t) => {
  const queried = expressions(dashboard).join('\n')
  for (const name of ['jotgate_requests_total', 'jotgate_refusals_total', 'jotgate_request_duration_seconds', 'jotgate_upstream_duration_seconds',
    'jotgate_store_duration_seconds', 'jotgate_store_errors_total', 'jotgate_store_fail_open_total', 'jotgate_jwks_fetches_total',
    'jotgate_logins_total', 'jotgate_revocations_total', 'jotgate_websocket_sessions', 'jotgate_websocket_closed_total', 'jotgate_token_verifications_total',
    'jotgate_process_resident_memory_bytes', 'jotgate_process_cpu_seconds_total']) {
    t.ok(queried.includes(name), `${name} is on the dashboard`)
  }
})
