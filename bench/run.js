/**
 * `npm run bench`: jotgate against a plain @fastify/http-proxy, same
 * upstream, same run, interleaved repetitions. See bench/README.md.
 *
 * Settings (environment): BENCH_REPS (3), BENCH_DURATION seconds (5),
 * BENCH_WARMUP seconds (0.5), BENCH_CONNECTIONS (50), BENCH_DISTINCT (10000),
 * BENCH_REVOCATIONS (200), BENCH_REVOCATION_INSTANCES ("1", e.g. "1,2,4"),
 * BENCH_LATENCY_PAIRS (3), BENCH_LATENCY_DURATION seconds (3), BENCH_LATENCY_RATE
 * (req/s; 0: a third of the baseline's), BENCH_ONLY (a regex on scenario names), BENCH_SEED (1), BENCH_LOG_LEVEL
 * (jotgate's log level, "info": one line per request as in production),
 * BENCH_QUIET_ROW=1 (adds HS256 repeated with log.requests: false),
 * BENCH_PROFILE=1 or --profile (BENCH_PROFILE_DIR: keep the .cpuprofile
 * files there), REDIS_URL (redis://127.0.0.1:6379).
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { spawnServer } from './servers.js'
import { commonSettings, cpuMicros, drive, envNumber, gcBetween, machineMicros, placement, removeKeys, threadCpuMicros, watchRss } from './load.js'
import { runRevocationJob } from './revocation.js'
import { compareProfiles, formatProfile, summarizeProfile } from './profile.js'
import { ALGS, gatewayConfig, generateKeys, signTokens, verifyCosts } from './tokens.js'
import { formatTable, median, summarize } from './report.js'

const env = process.env
const common = commonSettings()
const settings = {
  ...common,
  distinct: envNumber('BENCH_DISTINCT', 10_000),
  /**
   * How many times a distinct run sends each of its tokens: 3, about what
   * 5 s of load cycling through them sends here (the issue's reading of
   * "10,000 distinct tokens"); 1, every request a signature check (the
   * worst case for the cache).
   */
  distinctLaps: envNumber('BENCH_DISTINCT_LAPS', 3),
  /** Seconds after which a distinct run stops even before its last lap (see measure). */
  distinctMaxSeconds: 2 * common.duration,
  /** Distinct tokens of the warm-up before a distinct run: others than the measured ones, so the run starts with none of its tokens cached. */
  warmupDistinct: 1000,
  /** Fixed-rate latency: pairs of (baseline, HS256 repeated) windows, seconds each, connections, and the rate (0: a third of the baseline's req/s). */
  latencyPairs: envNumber('BENCH_LATENCY_PAIRS', 3),
  latencyDuration: envNumber('BENCH_LATENCY_DURATION', 3),
  latencyConnections: 20,
  latencyRate: envNumber('BENCH_LATENCY_RATE', 0),
  revocationCalls: envNumber('BENCH_REVOCATIONS', 200),
  revocationIntervalMs: 10,
  revocationInstances: (env.BENCH_REVOCATION_INSTANCES ?? '1').split(',').map(Number).filter((n) => n >= 1),
  only: env.BENCH_ONLY === undefined ? undefined : new RegExp(env.BENCH_ONLY, 'i'),
  seed: envNumber('BENCH_SEED', 1),
  logLevel: env.BENCH_LOG_LEVEL ?? 'info',
  /** The HS256 repeated row without the request line (log.requests: false). */
  quietRow: env.BENCH_QUIET_ROW === '1',
  profile: process.argv.includes('--profile') || env.BENCH_PROFILE === '1'
}

const RESULTS_FILE = fileURLToPath(new URL('results.json', import.meta.url))
const log = (/** @type {string} */ line) => process.stderr.write(`${line}\n`)
const sleep = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms))
const began = Date.now()
const elapsed = () => `${((Date.now() - began) / 1000).toFixed(0)}s`

/** Minimum ratios to the baseline's req/s (issue 8). EdDSA distinct has none. */
const TARGETS = {
  repeated: { HS256: 0.90, RS256: 0.85, ES256: 0.85, EdDSA: 0.85 },
  distinct: { HS256: 0.80, RS256: 0.65, ES256: 0.55, EdDSA: undefined }
}

/**
 * @typedef {object} Scenario
 * @property {string} name
 * @property {string} server the process it runs on: 'baseline', `${alg}-${kind}`, 'direct' or 'quiet'
 * @property {string[]} tokens sent during the measured run
 * @property {string[]} warmTokens sent during the warm-up
 * @property {import('./tokens.js').Alg} [alg]
 * @property {'repeated' | 'distinct'} [kind]
 * @property {number} [minRatio]
 * @property {number} [maxP99DeltaMs]
 */

/** @param {number} seed a small deterministic PRNG (mulberry32) */
function random (seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** @template T @param {T[]} items @param {() => number} rnd */
function shuffled (items, rnd) {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1))
    ;[out[i], out[j]] = /** @type {[T, T]} */ ([out[j], out[i]])
  }
  return out
}

/** The Redis server's pid, to count its CPU per request too (when /proc shows it). */
async function redisPid (/** @type {Redis} */ redis) {
  const info = await redis.info('server')
  const m = /process_id:(\d+)/.exec(info)
  const pid = m === null ? undefined : Number(m[1])
  return cpuMicros(pid) === undefined ? undefined : pid
}

/**
 * One measured run: warm-up, then a D-second window in the same autocannon
 * run, with the CPU time of every process read at the window's bounds and
 * the server's RSS sampled throughout it.
 * @param {Scenario} scenario
 * @param {{ target: import('./servers.js').ServerHandle, upstream: import('./servers.js').ServerHandle, pids: Record<string, number | undefined> }} where
 */
async function measure (scenario, { target, upstream, pids }) {
  /** @type {Record<string, number | undefined>} */
  let before = {}
  /** @type {Record<string, number | undefined>} */
  let after = {}
  /** @type {ReturnType<typeof machineMicros>} */
  let machineBefore
  /** @type {ReturnType<typeof machineMicros>} */
  let machineAfter
  /** @type {() => Record<string, number>} */
  let stopRss = () => ({})
  /** @type {Promise<Record<string, number>> | undefined} */
  let upstreamBefore
  /** @type {Promise<Record<string, number>> | undefined} */
  let targetBefore
  const snapshot = () => ({ ...Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuMicros(pid)])), serverMain: threadCpuMicros(target.pid, target.pid) })
  const result = await drive({
    urls: [target.url],
    connections: settings.connections,
    warmup: settings.warmup,
    // A distinct run sends each of its tokens BENCH_DISTINCT_LAPS times and
    // ends there, so its share of signature checks is the same however fast
    // the machine (a fixed 5 s made it 33-40% here and all of it on a slow
    // machine), unless that takes more than twice BENCH_DURATION: on a
    // machine too slow for three laps in 10 s the run still ends in time
    // (the whole bench under five minutes) and the footer's share of
    // checks says what it measured.
    ...(scenario.kind === 'distinct' ? { requests: scenario.tokens.length * settings.distinctLaps, duration: settings.distinctMaxSeconds } : { duration: settings.duration }),
    tokens: scenario.tokens,
    warmTokens: scenario.warmTokens,
    onWindowStart: () => {
      before = snapshot()
      machineBefore = machineMicros()
      stopRss = watchRss({ server: target.pid })
      upstreamBefore = upstream.stats()
      targetBefore = target.stats()
    },
    onWindowEnd: () => {
      after = snapshot()
      machineAfter = machineMicros()
    }
  }).done
  const rss = stopRss()
  const targetAfter = await target.stats()
  const gcBefore = (await targetBefore) ?? {}
  const { heapUsed } = targetAfter
  // The server's garbage collections over the window (ms, count); the
  // window's end is read a little late (the answers still arriving).
  const gc = gcBetween(gcBefore, targetAfter)
  const upstreamAfter = await upstream.stats()
  const answered = result.requests + result.non2xx
  /** @type {Record<string, number | null>} */
  const cpuUsPerReq = {}
  let ours = 0
  for (const k of Object.keys(pids)) {
    const b = before[k]
    const a = after[k]
    const spent = a === undefined || b === undefined ? undefined : a - b
    if (spent !== undefined) ours += spent
    cpuUsPerReq[k] = spent === undefined || answered === 0 ? null : spent / answered
  }
  // The server's main thread alone (the rest: libuv's pool, V8's helpers).
  const mainSpent = after.serverMain === undefined || before.serverMain === undefined ? undefined : after.serverMain - before.serverMain
  cpuUsPerReq.serverMain = mainSpent === undefined || answered === 0 ? null : mainSpent / answered
  // What other processes on the machine took while we measured, as a share
  // of its whole capacity: the noise this run was exposed to.
  const otherCpuShare = machineBefore === undefined || machineAfter === undefined
    ? null
    : Math.max(0, (machineAfter.busy - machineBefore.busy - ours) / (machineAfter.total - machineBefore.total))
  // New upstream connections during the window: ~0 when the proxy keeps its pool alive.
  const upstreamConnections = (upstreamAfter.connections ?? 0) - ((await upstreamBefore)?.connections ?? 0)
  // Signature checks in the window: jotgate's own count of verifications
  // that were not cache hits (read a little late, as the collections are).
  const signatureChecks = targetAfter.tokenMisses === undefined || gcBefore.tokenMisses === undefined ? null : targetAfter.tokenMisses - gcBefore.tokenMisses
  return { ...result, cpuUsPerReq, rssBytes: rss.server ?? null, heapMiB: heapUsed === undefined ? null : heapUsed / 2 ** 20, gc, otherCpuShare, upstreamConnections, signatureChecks }
}

/** Checks that every scenario's first request is answered 200 before measuring anything. */
async function preflight (/** @type {Scenario[]} */ scenarios, /** @type {Record<string, import('./servers.js').ServerHandle>} */ servers) {
  for (const s of scenarios) {
    for (const token of [s.tokens[0], s.warmTokens[0]]) {
      const res = await fetch(`${servers[s.server]?.url}/`, { headers: { authorization: `Bearer ${token}` } })
      const body = await res.text()
      if (res.status !== 200) throw new Error(`preflight ${s.name}: ${res.status} ${body}`)
    }
  }
}

/**
 * Latency at a fixed rate, well below what either server can do: the
 * baseline and the HS256 repeated jotgate take turns (B J B J ...), each
 * window `latencyDuration` s at `rate` requests per second in all
 * (autocannon's overallRate, open loop). At full load a closed-loop
 * driver's latency is mostly queueing (p50 is connections / req/s), so its
 * p99 says how fast the slower server drains the queue, not what a
 * request costs; here it says what the proxy adds to one request, GC
 * pauses and all.
 * @param {{ baseline: import('./servers.js').ServerHandle, jotgate: import('./servers.js').ServerHandle, token: string, rate: number }} ctx
 */
async function latencyPhase ({ baseline, jotgate, token, rate }) {
  /** @type {{ pair: number, server: string, p50: number, p99: number, p999: number, max: number, rps: number, non2xx: number, errors: number }[]} */
  const runs = []
  for (let pair = 0; pair < settings.latencyPairs; pair++) {
    // Who goes first alternates, so neither side always follows the other.
    const order = pair % 2 === 0 ? [['baseline', baseline], ['jotgate', jotgate]] : [['jotgate', jotgate], ['baseline', baseline]]
    for (const [name, h] of /** @type {[string, import('./servers.js').ServerHandle][]} */ (order)) {
      // Half a second of warm-up: the processes are warm, this only lets the rate settle.
      const r = await drive({ urls: [h.url], connections: settings.latencyConnections, warmup: 0.5, duration: settings.latencyDuration, rate, tokens: [token] }).done
      runs.push({ pair, server: name, p50: r.p50, p99: r.p99, p999: r.p999, max: r.max, rps: r.rps, non2xx: r.non2xx, errors: r.errors })
      log(`[${elapsed()}] latency at ${rate} req/s, pair ${pair + 1}/${settings.latencyPairs} ${name.padEnd(8)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  p99.9 ${r.p999.toFixed(2)} ms  max ${r.max.toFixed(2)} ms`)
    }
  }
  const side = (/** @type {string} */ server) => runs.filter((r) => r.server === server)
  const delta = (/** @type {'p50' | 'p99' | 'p999'} */ k) => median(Array.from({ length: settings.latencyPairs }, (_, pair) => {
    const j = runs.find((r) => r.pair === pair && r.server === 'jotgate')
    const b = runs.find((r) => r.pair === pair && r.server === 'baseline')
    return j === undefined || b === undefined ? null : j[k] - b[k]
  }))
  const of = (/** @type {string} */ server) => ({
    p50: median(side(server).map((r) => r.p50)),
    p99: median(side(server).map((r) => r.p99)),
    p999: median(side(server).map((r) => r.p999)),
    rps: median(side(server).map((r) => r.rps))
  })
  // A window that served less than 95% of the rate was queueing: its
  // percentiles are not the proxy's alone.
  const behind = runs.filter((r) => r.rps < 0.95 * rate).length
  return { rate, connections: settings.latencyConnections, seconds: settings.latencyDuration, pairs: settings.latencyPairs, baseline: of('baseline'), jotgate: of('jotgate'), delta: { p50: delta('p50'), p99: delta('p99'), p999: delta('p999') }, behind, runs }
}

/**
 * Revocation latency with `n` instances sharing the store, under the
 * HS256 repeated-token load spread over all of them.
 * @param {number} n
 * @param {{ jotgate: import('./servers.js').ServerHandle, startJotgate: (name: string) => Promise<import('./servers.js').ServerHandle>, loadToken: string, items: { token: string, jti: string, exp: number }[] }} ctx
 */
async function revocationPhase (n, { jotgate, startJotgate, loadToken, items }) {
  const extra = await Promise.all(Array.from({ length: n - 1 }, (_, i) => startJotgate(`jotgate-${i + 2}`)))
  const instances = [jotgate, ...extra]
  try {
    const load = drive({ urls: instances.map((h) => h.url), connections: settings.connections, warmup: settings.warmup, duration: Infinity, tokens: [loadToken] })
    await sleep(settings.warmup * 1000 + 200)
    const report = await runRevocationJob({
      adminUrls: instances.map((h) => `http://127.0.0.1:${h.adminPort}`),
      gatewayUrls: instances.map((h) => h.url),
      items,
      intervalMs: settings.revocationIntervalMs
    })
    load.stop()
    const loadResult = await load.done
    const sorted = [...report.latencies].sort((a, b) => a - b)
    const q = (/** @type {number} */ p) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? NaN
    return {
      instances: n,
      calls: report.calls,
      failed: report.failed,
      p50: q(0.5),
      p99: q(0.99),
      max: q(1),
      refusedEverywhere: report.refusedEverywhere,
      leaked: report.leaked,
      loadRps: loadResult.rps,
      loadNon2xx: loadResult.non2xx
    }
  } finally {
    await Promise.all(extra.map((h) => h.stop()))
  }
}

/**
 * A separate server with --cpu-prof, driven with the HS256 repeated token;
 * only samples inside the measured window are summarized.
 * @param {{ start: (execArgv: string[]) => Promise<import('./servers.js').ServerHandle>, token: string, dir: string }} ctx
 */
async function profileServer ({ start, token, dir }) {
  const handle = await start(['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval=200'])
  try {
    /** @type {{ process?: number, main?: number, at: number }} */
    let cpuBefore = { at: 0 }
    /** @type {{ process?: number, main?: number, at: number }} */
    let cpuAfter = { at: 0 }
    const cpuNow = () => ({ process: cpuMicros(handle.pid), main: threadCpuMicros(handle.pid, handle.pid), at: Number(process.hrtime.bigint() / 1000n) })
    const result = await drive({
      urls: [handle.url],
      connections: settings.connections,
      warmup: settings.warmup + 1,
      duration: settings.duration,
      tokens: [token],
      onWindowStart: () => { cpuBefore = cpuNow() },
      onWindowEnd: () => { cpuAfter = cpuNow() }
    }).done
    const diff = (/** @type {number | undefined} */ a, /** @type {number | undefined} */ b) => a === undefined || b === undefined ? undefined : a - b
    const code = await handle.stop()
    if (code !== 0) throw new Error(`${handle.name} exited with ${code}`)
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
    if (file === undefined) throw new Error('no .cpuprofile written')
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8'))
    // Kept for Chrome DevTools or speedscope when asked for.
    if (env.BENCH_PROFILE_DIR) {
      mkdirSync(env.BENCH_PROFILE_DIR, { recursive: true })
      copyFileSync(join(dir, file), join(env.BENCH_PROFILE_DIR, `${handle.name}.cpuprofile`))
    }
    return {
      rps: result.rps,
      p99: result.p99,
      ...summarizeProfile(profile, {
        requests: result.requests + result.non2xx,
        window: { start: cpuBefore.at, end: cpuAfter.at },
        mainThreadCpuUs: diff(cpuAfter.main, cpuBefore.main),
        processCpuUs: diff(cpuAfter.process, cpuBefore.process)
      })
    }
  } finally {
    await handle.stop()
  }
}

async function main () {
  const dir = mkdtempSync(join(tmpdir(), 'jotgate-bench-'))
  const keyPrefix = `jotgate-bench:${process.pid}:${Date.now()}:`
  /** @type {import('./servers.js').ServerHandle[]} */
  const started = []
  const cleanup = async () => { await Promise.all(started.map((h) => h.stop().catch(() => null))) }
  process.once('SIGINT', () => { void cleanup().finally(() => process.exit(130)) })
  const redis = new Redis(settings.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await redis.connect()
    log(`[${elapsed()}] keys and tokens (${settings.distinct} distinct per algorithm)...`)
    const keys = generateKeys(dir)
    /** Filled for every algorithm by the loop below. */
    const tokens = /** @type {Record<import('./tokens.js').Alg, { repeated: string, distinct: string[], warm: string[] }>} */ ({})
    for (const alg of ALGS) {
      const key = keys[alg]
      const [repeated] = await signTokens(key, 1, `${alg}-repeated`)
      const distinct = await signTokens(key, settings.distinct, `${alg}-distinct`)
      const warm = await signTokens(key, settings.warmupDistinct, `${alg}-warm`)
      tokens[alg] = { repeated: /** @type {{ token: string }} */ (repeated).token, distinct: distinct.map((t) => t.token), warm: warm.map((t) => t.token) }
    }
    const verifyUs = verifyCosts(keys, tokens)
    log(`[${elapsed()}] node:crypto alone, µs per signature check: ${JSON.stringify(verifyUs)}`)
    const revocationItems = await signTokens(keys.HS256, settings.revocationCalls * settings.revocationInstances.length, 'revoked')
    log(`[${elapsed()}] starting servers...`)
    const childEnv = { ...env }
    // LOG_LEVEL would override the config's level inside jotgate.
    delete childEnv.LOG_LEVEL
    const upstream = await spawnServer('upstream', ['upstream'], { env: childEnv })
    started.push(upstream)
    const configFile = join(dir, 'gateway.json')
    // The measured jotgate keeps the revocation list in memory (store.replica,
    // consistent through acknowledged propagation); one row runs the default
    // direct lookup (one Redis MGET per request) for comparison.
    writeFileSync(configFile, JSON.stringify(gatewayConfig({ keys, upstream: upstream.url, redisUrl: settings.redisUrl, keyPrefix, logLevel: settings.logLevel, replica: true }), null, 2))
    const directFile = join(dir, 'gateway-direct.json')
    writeFileSync(directFile, JSON.stringify(gatewayConfig({ keys, upstream: upstream.url, redisUrl: settings.redisUrl, keyPrefix, logLevel: settings.logLevel }), null, 2))
    // And one without the request line (log.requests: false), to show its share.
    const quietFile = join(dir, 'gateway-quiet.json')
    writeFileSync(quietFile, JSON.stringify(gatewayConfig({ keys, upstream: upstream.url, redisUrl: settings.redisUrl, keyPrefix, logLevel: settings.logLevel, replica: true, requestLines: false }), null, 2))
    const startJotgate = async (/** @type {string} */ name, /** @type {string[]} */ execArgv = [], file = configFile) => {
      const h = await spawnServer(name, ['jotgate', file], { env: childEnv, execArgv })
      started.push(h)
      return h
    }

    /** @type {Scenario[]} */
    let scenarios = [{ name: 'baseline (http-proxy)', server: 'baseline', tokens: [tokens.HS256.repeated], warmTokens: [tokens.HS256.repeated] }]
    for (const alg of ALGS) {
      const t = /** @type {{ repeated: string, distinct: string[], warm: string[] }} */ (tokens[alg])
      scenarios.push({ name: `${alg} repeated`, server: `${alg}-repeated`, alg, kind: 'repeated', tokens: [t.repeated], warmTokens: [t.repeated], minRatio: TARGETS.repeated[alg], ...(alg === 'HS256' ? { maxP99DeltaMs: 1 } : {}) })
      scenarios.push({ name: `${alg} ${settings.distinct} distinct`, server: `${alg}-distinct`, alg, kind: 'distinct', tokens: t.distinct, warmTokens: t.warm, ...(TARGETS.distinct[alg] === undefined ? {} : { minRatio: TARGETS.distinct[alg] }) })
    }
    const hs = /** @type {{ repeated: string }} */ (tokens.HS256)
    scenarios.push({ name: 'HS256 repeated, direct', server: 'direct', alg: 'HS256', kind: 'repeated', tokens: [hs.repeated], warmTokens: [hs.repeated] })
    // Opt-in since the distinct rows send each token three times: the full
    // run has to stay under five minutes.
    if (settings.quietRow) scenarios.push({ name: 'HS256 repeated, no request line', server: 'quiet', alg: 'HS256', kind: 'repeated', tokens: [hs.repeated], warmTokens: [hs.repeated] })
    if (settings.only !== undefined) {
      const only = settings.only
      scenarios = scenarios.filter((s) => s.server === 'baseline' || only.test(s.name))
    }
    // One process per scenario, as the baseline has its own: a process that
    // served every algorithm, each run after a reload, carried into every
    // row the heap its other scenarios left for V8's next full collection
    // (peak RSS of one row moved from 128 to 205 MiB with what ran before
    // it) and the JIT state of all of them. The revocation phase uses the
    // HS256 repeated one, started even when BENCH_ONLY leaves it out.
    const fileOf = { direct: directFile, quiet: quietFile }
    const names = [...new Set([...scenarios.map((s) => s.server), 'HS256-repeated'])]
    const handles = await Promise.all(names.map((name) => name === 'baseline'
      ? spawnServer('baseline', ['baseline', upstream.url], { env: childEnv }).then((h) => { started.push(h); return h })
      : startJotgate(`jotgate-${name}`, [], fileOf[/** @type {'direct' | 'quiet'} */ (name)] ?? configFile)))
    /** @type {Record<string, import('./servers.js').ServerHandle>} */
    const servers = Object.fromEntries(names.map((name, i) => [name, /** @type {import('./servers.js').ServerHandle} */ (handles[i])]))
    const serverOf = (/** @type {string} */ name) => {
      const h = servers[name]
      if (h === undefined) throw new Error(`no server ${name}`)
      return h
    }
    const jotgate = serverOf('HS256-repeated')
    const rPid = await redisPid(redis)

    await preflight(scenarios, servers)

    /** @type {Record<string, any[]>} */
    const raw = Object.fromEntries(scenarios.map((s) => [s.name, []]))
    const rnd = random(settings.seed)
    /** @type {string[][]} */
    const orders = []
    // Priming: one short run per scenario before anything is measured, so
    // that no measured run pays for JIT warm-up or for opening pools.
    log(`[${elapsed()}] priming...`)
    // All at once: the runs compete for the cores, which does not matter
    // here (nothing is measured), and it takes one warm-up, not eleven.
    await Promise.all(scenarios.map((s) => drive({ urls: [serverOf(s.server).url], connections: settings.connections, duration: 2 * settings.warmup, tokens: s.warmTokens }).done))
    // Each server's main thread on one core, the driver and the upstream on
    // the others, once priming has started every thread pool (see placement
    // in load.js); undone before the revocation phase.
    const place = placement()
    const placed = place === null
      ? null
      : { server: place.server, rest: place.rest, ok: [...Object.values(servers).map((h) => place.place(h.pid, place.server)), place.place(process.pid, place.rest, true), place.place(upstream.pid, place.rest, true)].every(Boolean) }
    log(`[${elapsed()}] ${placed === null ? 'not pinned (one CPU, no taskset or BENCH_PIN=0)' : `pinned: servers' main threads on CPU ${placed.server}, driver and upstream on ${placed.rest}${placed.ok ? '' : ' (some taskset calls failed)'}`}`)
    const baselineScenario = /** @type {Scenario} */ (scenarios.find((s) => s.server === 'baseline'))
    const others = scenarios.filter((s) => s !== baselineScenario)
    let seq = 0
    for (let rep = 0; rep < settings.reps; rep++) {
      // Every jotgate run has a baseline run at most one run away, its
      // partner: groups of two jotgate runs, the baseline, two more, in a
      // shuffled order. A row's ratio is the median of its runs' ratios to
      // their partners, so a machine that speeds up or slows down between
      // runs (shared hosts moved 36-76% within one run) moves both sides of
      // each ratio.
      const shuffledOthers = shuffled(others, rnd)
      /** @type {{ scenario: Scenario, seq: number, partner: number | null }[]} */
      const order = []
      for (let i = 0; i < shuffledOthers.length || order.length === 0; i += 4) {
        const group = shuffledOthers.slice(i, i + 4)
        const before = group.slice(0, Math.ceil(group.length / 2))
        const after = group.slice(before.length)
        const partner = seq + before.length
        for (const scenario of before) order.push({ scenario, seq: seq++, partner })
        order.push({ scenario: baselineScenario, seq: seq++, partner: null })
        for (const scenario of after) order.push({ scenario, seq: seq++, partner })
      }
      orders.push(order.map((o) => o.scenario.name))
      for (const { scenario: s, seq: at, partner } of order) {
        const target = serverOf(s.server)
        // A distinct run starts on a fresh generation (a reload, as on
        // SIGHUP), so it finds none of its tokens in the verified-token
        // cache whatever ran before it; the warm-up then runs on the new
        // generation. Repeated-token runs are not reloaded, as the
        // baseline is not: a reload leaves the old generation to V8's next
        // full collection, and those collections (2-4 per run, 14-50 ms)
        // landed in the measured window and its p99.
        const cacheCold = s.kind === 'distinct' ? await target.reload() : null
        if (cacheCold === false) throw new Error('jotgate refused to reload its config')
        const r = await measure(s, { target, upstream, pids: { server: target.pid, upstream: upstream.pid, redis: rPid, driver: process.pid } })
        raw[s.name]?.push({ rep, seq: at, partner, cacheCold, ...r })
        log(`[${elapsed()}] rep ${rep + 1}/${settings.reps} ${s.name.padEnd(22)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  cpu ${r.cpuUsPerReq.server?.toFixed(0)} µs/req (main ${r.cpuUsPerReq.serverMain?.toFixed(0)})  rss ${((r.rssBytes ?? NaN) / 2 ** 20).toFixed(0)} MiB${r.heapMiB === null ? '' : ` (heap ${r.heapMiB.toFixed(0)})`}  gc ${r.gc.minorMs.toFixed(0)} ms/${r.gc.minorCount} minor, ${r.gc.majorMs.toFixed(0)} ms/${r.gc.majorCount} major  others ${r.otherCpuShare === null ? '-' : (100 * r.otherCpuShare).toFixed(0)}%  new upstream conns ${r.upstreamConnections}${r.non2xx + r.errors > 0 ? `  NON-2XX ${r.non2xx} ERR ${r.errors}` : ''}`)
      }
    }

    // Fixed-rate latency, still pinned, on the processes measured above.
    const baselineRps = median((raw[baselineScenario.name] ?? []).map((r) => r.rps)) ?? 0
    // A third of what the baseline served: at half, a machine slowing down
    // by half during the phase (seen) left the servers queueing again.
    const latencyRate = settings.latencyRate > 0 ? settings.latencyRate : Math.max(100, Math.round(baselineRps / 3 / 100) * 100)
    const latency = settings.latencyPairs > 0 ? await latencyPhase({ baseline: serverOf('baseline'), jotgate, token: tokens.HS256.repeated, rate: latencyRate }) : null

    if (place !== null) for (const pid of [...Object.values(servers).map((h) => h.pid), process.pid, upstream.pid]) place.unplace(pid)
    /** @type {any[]} */
    const revocation = []
    for (const [i, n] of settings.revocationInstances.entries()) {
      const items = revocationItems.slice(i * settings.revocationCalls, (i + 1) * settings.revocationCalls)
      log(`[${elapsed()}] revocation latency, ${n} instance(s), ${items.length} calls under load...`)
      revocation.push(await revocationPhase(n, { jotgate, startJotgate, loadToken: tokens.HS256.repeated, items }))
    }

    let profile
    if (settings.profile) {
      log(`[${elapsed()}] CPU profile run (HS256 repeated)...`)
      // The baseline is profiled the same way, so that the summary can say
      // where jotgate spends more per request than the plain proxy.
      const baselineProfile = await profileServer({
        start: (execArgv) => spawnServer('baseline-profiled', ['baseline', upstream.url], { env: childEnv, execArgv }).then((h) => { started.push(h); return h }),
        token: tokens.HS256.repeated,
        dir: join(dir, 'prof-baseline')
      })
      const jotgateProfile = await profileServer({ start: (execArgv) => startJotgate('jotgate-profiled', execArgv), token: tokens.HS256.repeated, dir: join(dir, 'prof-jotgate') })
      profile = { jotgate: jotgateProfile, baseline: baselineProfile, comparison: compareProfiles(jotgateProfile, baselineProfile) }
    }

    const summary = summarize(scenarios, raw)
    const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, os: `${process.platform} ${release()}`, loadavgAtEnd: loadavg(), date: new Date().toISOString() }
    const lines = formatTable(summary, { revocation, latency, settings, machine, verifyUs, placed })
    if (profile !== undefined) lines.push('', ...formatProfile(profile))
    process.stdout.write(`${lines.join('\n')}\n`)
    const { only, ...plainSettings } = settings
    writeFileSync(RESULTS_FILE, `${JSON.stringify({
      machine,
      settings: { ...plainSettings, only: only?.source ?? null, keyPrefix, redisCpuMeasured: rPid !== undefined, placement: placed },
      orders,
      verifyUsPerSignature: verifyUs,
      scenarios: summary,
      revocation,
      latency,
      ...(profile === undefined ? {} : { profile }),
      totalSeconds: (Date.now() - began) / 1000
    }, null, 2)}\n`)
    log(`[${elapsed()}] wrote ${RESULTS_FILE}`)
  } finally {
    await cleanup()
    redis.disconnect()
    await removeKeys(keyPrefix, settings.redisUrl).catch((err) => log(`could not remove the run's Redis keys: ${err}`))
    rmSync(dir, { recursive: true, force: true })
  }
}

// `--soak`: the five-minute memory run of bench/soak.js instead of the table;
// `--workers`: server.workers 1 against 2 (bench/workers.js);
// `--instructions`: instructions per request under callgrind (bench/instructions.js).
const run = process.argv.includes('--soak')
  ? import('./soak.js').then((m) => m.soak())
  : process.argv.includes('--workers')
    ? import('./workers.js').then((m) => m.workers())
    : process.argv.includes('--instructions') ? import('./instructions.js').then((m) => m.instructions()) : main()
run.catch((err) => {
  log(err?.stack ?? String(err))
  process.exitCode = 1
})
