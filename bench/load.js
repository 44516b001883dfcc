/**
 * Driving load (autocannon's programmatic API) and reading what the
 * servers spent (/proc/<pid>/stat and /status).
 */
import { readFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { execFileSync } from 'node:child_process'
// @ts-ignore: autocannon publishes no types (checkJs only; nothing here is compiled)
import autocannon from 'autocannon'
import { Redis } from 'ioredis'

/**
 * A number from the environment, or `fallback` when unset or empty.
 * @param {string} name @param {number} fallback
 */
export function envNumber (name, fallback) {
  const v = process.env[name]
  return v === undefined || v === '' ? fallback : Number(v)
}

/** The settings every bench mode shares: repetitions, window, warm-up, connections, Redis. */
export function commonSettings () {
  return {
    reps: envNumber('BENCH_REPS', 3),
    duration: envNumber('BENCH_DURATION', 5),
    warmup: envNumber('BENCH_WARMUP', 0.5),
    connections: envNumber('BENCH_CONNECTIONS', 50),
    redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
  }
}

/** Clock ticks per second of /proc/<pid>/stat (100 on Linux almost always). */
const CLK_TCK = (() => {
  try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100 } catch { return 100 }
})()

/**
 * User + system CPU time of a process, in microseconds; undefined when
 * /proc cannot be read (another PID namespace, not Linux).
 * @param {number | undefined} pid
 */
export function cpuMicros (pid) {
  if (pid === undefined) return undefined
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the `(comm)`, which may itself hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // utime and stime are fields 14 and 15 (1-based); fields[0] is field 3.
    return (Number(fields[11]) + Number(fields[12])) * 1e6 / CLK_TCK
  } catch {
    return undefined
  }
}

/**
 * Whole-machine CPU time from /proc/stat, in microseconds: busy (every
 * process, ours and others') and total (busy + idle) summed over all cores.
 * @returns {{ busy: number, total: number } | undefined}
 */
export function machineMicros () {
  try {
    const first = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? ''
    const [user, nice, system, idle, iowait, irq, softirq, steal] = first.trim().split(/\s+/).slice(1).map(Number)
    const busy = /** @type {number[]} */ ([user, nice, system, irq, softirq, steal]).reduce((a, b) => a + (b || 0), 0)
    return { busy: busy * 1e6 / CLK_TCK, total: (busy + (idle || 0) + (iowait || 0)) * 1e6 / CLK_TCK }
  } catch {
    return undefined
  }
}

/**
 * CPU time of one thread (the main thread when tid is the pid), in microseconds.
 * @param {number} pid @param {number} tid
 */
export function threadCpuMicros (pid, tid) {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 1e6 / CLK_TCK
  } catch {
    return undefined
  }
}

/** @param {number | undefined} pid  @returns {number | undefined} resident set size in bytes */
export function rssBytes (pid) {
  if (pid === undefined) return undefined
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? undefined : Number(m[1]) * 1024
  } catch {
    return undefined
  }
}

/**
 * Samples the RSS of some processes every `intervalMs` until stopped;
 * returns the peak of each.
 * @param {Record<string, number | undefined>} pids
 * @param {number} [intervalMs]
 */
export function watchRss (pids, intervalMs = 200) {
  /** @type {Record<string, number>} */
  const peak = {}
  const sample = () => {
    for (const [name, pid] of Object.entries(pids)) {
      const rss = rssBytes(pid)
      if (rss !== undefined && rss > (peak[name] ?? 0)) peak[name] = rss
    }
  }
  sample()
  const timer = setInterval(sample, intervalMs)
  return () => { clearInterval(timer); sample(); return peak }
}

/**
 * A server's garbage collections between two of its stats answers
 * (bench/servers.js): milliseconds and counts of scavenges (minor) and of
 * the rest (major). NaN where a server does not report them (another
 * checkout's older servers.js).
 * @param {Record<string, number>} before @param {Record<string, number>} after
 */
export function gcBetween (before, after) {
  const delta = (/** @type {string} */ k) => (after[k] ?? NaN) - (before[k] ?? NaN)
  return { minorMs: delta('minorMs'), minorCount: delta('minorCount'), majorMs: delta('majorMs'), majorCount: delta('majorCount') }
}

/** @param {Float64Array} sorted @param {number} q in [0, 1] */
function quantile (sorted, q) {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN
}

/**
 * @typedef {object} LoadResult
 * @property {number} requests responses with a 2xx status in the window
 * @property {number} non2xx
 * @property {number} errors connection errors and timeouts in the window
 * @property {number} seconds length of the window
 * @property {number} rps 2xx responses per second
 * @property {number} p50 ms, from every 2xx response time (not autocannon's whole-ms histogram)
 * @property {number} p99 ms
 * @property {number} p999 ms
 * @property {number} max ms
 * @property {Record<string, number>} statusCodes
 * @property {number} firstSends responses in the window whose token the window had not sent before
 *   (with several tokens; the requests in flight when the window opened, warm-up tokens, count as such)
 */

/** @param {string[]} tokens @param {number} c @param {number} connections */
function requestsFor (tokens, c, connections) {
  if (tokens.length === 0) return [{ method: 'GET', path: '/' }]
  const mine = []
  for (let i = c % tokens.length; i < tokens.length; i += connections) {
    mine.push({ method: 'GET', path: '/', headers: { authorization: `Bearer ${tokens[i]}` } })
  }
  return mine
}

/**
 * Runs autocannon against `urls` with `connections` keep-alive connections:
 * `warmup` seconds with `warmTokens`, then a measured window of `duration`
 * seconds with `tokens`, in one run, so that no connection (client side or
 * proxy to upstream) is torn down and reopened between the two. Several
 * tokens are spread so that connection c sends tokens c, c + C, c + 2C, ...
 * in a ring: every request is prebuilt (the driver spends the same per
 * request whatever the case) and no two connections send the same token at
 * once. `duration: Infinity` runs until stop(). With `requests`, the
 * window ends after that many responses (or `duration`, whichever first):
 * `requests: tokens.length` sends each token about once.
 * With `rate`, autocannon sends that many requests per second in all
 * (open loop) instead of as many as the connections can.
 * @param {{ urls: string[], connections: number, warmup?: number, duration: number, requests?: number, rate?: number, tokens?: string[], warmTokens?: string[],
 *   onWindowStart?: () => void, onWindowEnd?: () => void }} options
 * @returns {{ done: Promise<LoadResult>, stop: () => void }}
 */
export function drive ({ urls, connections, warmup = 0, duration, requests, rate, tokens = [], warmTokens = tokens, onWindowStart, onWindowEnd }) {
  /** @type {{ client: any, c: number }[]} */
  const clients = []
  /** Responses in the window per connection, and how many tokens its ring holds. */
  const sent = new Map()
  // requestsFor's ring length: tokens c, c + C, ... below tokens.length.
  const ringOf = (/** @type {number} */ c) => Math.max(1, Math.ceil((tokens.length - c % Math.max(1, tokens.length)) / connections))
  let next = 0
  let latencies = new Float64Array(1 << 20)
  let n = 0
  let non2xx = 0
  let errors = 0
  /** @type {Record<string, number>} */
  const statusCodes = {}
  let measuring = false
  let t0 = 0
  let t1 = 0
  const instance = autocannon({
    url: urls.length === 1 ? urls[0] : urls,
    connections,
    // We end the window ourselves; autocannon's own end is only a backstop.
    duration: Number.isFinite(duration) ? warmup + duration + 30 : 24 * 3600,
    timeout: 10,
    // autocannon acts on stop() at its next sample tick (1 s by default),
    // sending all the while: half a second of load past every window.
    sampleInt: 100,
    ...(rate === undefined ? {} : { overallRate: rate }),
    setupClient: (/** @type {any} */ client) => {
      const c = next++ % connections
      clients.push({ client, c })
      sent.set(client, { n: 0, ring: ringOf(c) })
      client.setRequests(requestsFor(warmup > 0 ? warmTokens : tokens, c, connections))
    }
  })
  let firstSends = 0
  instance.on('response', (/** @type {unknown} */ client, /** @type {number} */ statusCode, /** @type {number} */ _bytes, /** @type {number} */ responseTime) => {
    if (!measuring) return
    const mine = sent.get(client)
    if (mine !== undefined && mine.n++ < mine.ring) firstSends++
    statusCodes[statusCode] = (statusCodes[statusCode] ?? 0) + 1
    if (statusCode < 200 || statusCode > 299) non2xx++
    else {
      if (n === latencies.length) { const bigger = new Float64Array(n * 2); bigger.set(latencies); latencies = bigger }
      latencies[n++] = responseTime
    }
    if (requests !== undefined && n + non2xx >= requests) endWindow()
  })
  instance.on('reqError', () => { if (measuring) errors++ })
  const startWindow = () => {
    if (warmup > 0 && warmTokens !== tokens) for (const { client, c } of clients) client.setRequests(requestsFor(tokens, c, connections))
    onWindowStart?.()
    t0 = performance.now()
    measuring = true
  }
  let ended = false
  const endWindow = () => {
    if (ended) return
    ended = true
    clearTimeout(endTimer)
    if (measuring) { t1 = performance.now(); measuring = false; onWindowEnd?.() }
    instance.stop()
  }
  const startTimer = setTimeout(startWindow, warmup * 1000)
  const endTimer = Number.isFinite(duration) ? setTimeout(endWindow, (warmup + duration) * 1000) : undefined
  const done = instance.then(() => {
    clearTimeout(startTimer)
    endWindow()
    const sorted = latencies.subarray(0, n).sort()
    const seconds = (t1 - t0) / 1000
    return {
      requests: n,
      non2xx,
      errors,
      seconds,
      rps: seconds > 0 ? n / seconds : 0,
      p50: quantile(sorted, 0.5),
      p99: quantile(sorted, 0.99),
      p999: quantile(sorted, 0.999),
      max: quantile(sorted, 1),
      statusCodes,
      firstSends
    }
  })
  return { done, stop: endWindow }
}

/**
 * Deletes what a run wrote to Redis (its entries expire on their own; this
 * removes them now).
 * @param {string} prefix
 * @param {string} redisUrl
 */
export async function removeKeys (prefix, redisUrl) {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await redis.connect()
    /** @type {string[]} */
    const stale = []
    for await (const batch of redis.scanStream({ match: `${prefix}*`, count: 1000 })) stale.push(...batch)
    if (stale.length > 0) await redis.del(...stale)
  } finally {
    redis.disconnect()
  }
}

/**
 * Where the processes run: the main thread of the server under test on
 * the last CPU, the driver and the upstream on the others (taskset, from
 * util-linux). On the 2-core machines this project runs on, the server's
 * CPU per request moved by up to 2x with the core it happened to be on
 * and with what shared that core (measured: the baseline at 90 against
 * 175 µs per request pinned to one core or the other, the speed of the
 * two cores changing over minutes); pinned, the same process measured in
 * alternating one-second slices spread 0.81-1.02 against jotgate, not
 * 0.50-1.58. Only the main thread is placed: libuv's pool and V8's
 * helpers stay free to use any core. null when there is one CPU, no
 * taskset, or BENCH_PIN=0.
 * @returns {{ server: string, rest: string, place: (pid: number, cpus: string, allThreads?: boolean) => boolean, unplace: (pid: number) => boolean } | null}
 */
export function placement () {
  const n = cpus().length
  if (n < 2 || process.env.BENCH_PIN === '0') return null
  const all = `0-${n - 1}`
  /** @param {number} pid @param {string} list @param {boolean} allThreads */
  const taskset = (pid, list, allThreads) => {
    try {
      execFileSync('taskset', [...(allThreads ? ['-a'] : []), '-p', '-c', list, String(pid)], { stdio: 'ignore' })
      return true
    } catch {
      return false
    }
  }
  if (!taskset(process.pid, all, true)) return null
  return {
    server: String(n - 1),
    rest: n === 2 ? '0' : `0-${n - 2}`,
    place: (pid, list, allThreads = false) => taskset(pid, list, allThreads),
    unplace: (pid) => taskset(pid, all, true)
  }
}
