/**
 * The per-request histograms count in plain numbers and build prom-client's
 * values only when scraped. What a scrape shows must be exactly what
 * prom-client's own Histogram shows for the same observations, in the text
 * format and in JSON, values on bucket bounds and beyond the last included.
 */
import t from 'tap'
import { Histogram, Registry } from 'prom-client'
import { RequestHistogram } from '../../../src/admin/metrics.js'

const BUCKETS = [0.001, 0.005, 0.01, 0.1, 1]
const OBSERVATIONS: Array<[string, number]> = [
  ['/a', 0.0004], ['/a', 0.001], ['/a', 0.0011], ['/a', 0.005], ['/a', 0.2], ['/a', 3],
  ['/b', 0], ['/b', 1], ['/b', 1.0000001], ['/c/x', 0.05]
]

function pair () {
  const ours = new Registry()
  const theirs = new Registry()
  const fast = new RequestHistogram({ name: 'h_seconds', help: 'h', label: 'route', buckets: BUCKETS, registers: [ours] })
  const stock = new Histogram({ name: 'h_seconds', help: 'h', labelNames: ['route'], buckets: BUCKETS, registers: [theirs] })
  return { ours, theirs, fast, stock }
}

t.test('the text exposition equals prom-client\'s for the same observations', async (t) => {
  const { ours, theirs, fast, stock } = pair()
  for (const [route, v] of OBSERVATIONS) {
    fast.cell(route).observe(v)
    stock.observe({ route }, v)
  }
  const text = await ours.metrics()
  t.equal(text, await theirs.metrics())
  t.match(text, /h_seconds_bucket\{le="0\.001",route="\/a"\} 2\n/, 'a value on a bound counts in that bucket')
  t.match(text, /h_seconds_bucket\{le="\+Inf",route="\/a"\} 6\n/, 'beyond the last bound: only +Inf')
  t.match(text, /h_seconds_count\{route="\/b"\} 3\n/)
})

t.test('JSON values equal prom-client\'s', async (t) => {
  const { ours, theirs, fast, stock } = pair()
  for (const [route, v] of OBSERVATIONS) {
    fast.cell(route).observe(v)
    stock.observe({ route }, v)
  }
  // Compared on what a consumer reads (prom-client adds `exemplar: null`).
  const read = async (r: Registry) => (await r.getMetricsAsJSON()).map((m) => ({
    name: m.name,
    help: m.help,
    type: m.type,
    values: m.values.map((v) => ({ metricName: (v as { metricName?: string }).metricName, labels: v.labels, value: v.value }))
  }))
  const mine = await read(ours)
  t.same(mine, await read(theirs))
  t.equal(mine[0]?.values.length, 3 * (BUCKETS.length + 3), 'buckets, +Inf, sum and count of three routes')
})

t.test('reset empties every series; a cell handed out before keeps counting', async (t) => {
  const { ours, fast } = pair()
  const cell = fast.cell('/a')
  cell.observe(0.002)
  ours.resetMetrics()
  t.match(await ours.metrics(), /h_seconds_count\{route="\/a"\} 0\n/)
  cell.observe(0.002)
  t.match(await ours.metrics(), /h_seconds_count\{route="\/a"\} 1\n/)
  t.equal(fast.cell('/a'), cell, 'one cell per label value')
  cell.observe(Number.NaN)
  cell.observe(Number.POSITIVE_INFINITY)
  t.match(await ours.metrics(), /h_seconds_sum\{route="\/a"\} 0\.002\n/, 'a value that is not a finite number is not counted')
})
