/**
 * `node bench/compare.js [options] ROOT[:flag...] ...` after a build: the
 * baseline and one jotgate process per ROOT, side by side, in shuffled
 * rounds, to tell whether a change moves CPU per request. A ROOT is a
 * checkout of jotgate with its dist/ built (`git worktree add ../before
 * HEAD~1 && (cd ../before && npm ci && npm run build)`; `.` is this one);
 * each jotgate runs that checkout's own bench/servers.js and dist/. Naming
 * the same ROOT twice shows how far two processes of one build differ.
 *
 * Flags after a ROOT: `quiet` (log.requests: false), `nocache`
 * (tokens.cacheSize: 0). Options: --rounds N (5), --duration S (4),
 * --distinct N (0: one token repeated; else N distinct tokens, cache
 * emptied before each run as in run.js), --alg A (HS256; RS256, ES256 or
 * EdDSA: the tokens' algorithm). Each run: a reload (empty
 * verified-token cache), 1 s warm-up, the measured window. Printed per
 * round: req/s, p99, peak RSS and CPU µs per request (process/main
 * thread); minor-GC time per request with the scavenge count, major-GC
 * time with its count and the V8 heap in use at the end (every server,
 * baseline included, reports its own); at the end, medians and two
 * ratios to the baseline: of the medians, and the median of the ratios
 * to the baseline of the same round. Nothing is written.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { spawnServer } from './servers.js'
import { commonSettings, cpuMicros, drive, gcBetween, removeKeys, threadCpuMicros, watchRss } from './load.js'
import { gatewayConfig, generateKeys, signTokens } from './tokens.js'

const { values: opts, positionals: roots } = parseArgs({
  allowPositionals: true,
  options: { rounds: { type: 'string', default: '5' }, duration: { type: 'string', default: '4' }, distinct: { type: 'string', default: '0' }, alg: { type: 'string', default: 'HS256' } }
})
const settings = { ...commonSettings(), rounds: Number(opts.rounds), duration: Number(opts.duration), distinct: Number(opts.distinct), alg: /** @type {import('./tokens.js').Alg} */ (opts.alg) }
const log = (/** @type {string} */ line) => process.stdout.write(`${line}\n`)

/**
 * @typedef {object} Sample
 * @property {number} rps
 * @property {number} p99 ms
 * @property {number} rss MiB, peak during the measured window
 * @property {number} cpu µs per request, whole process
 * @property {number} main µs per request, main thread
 * @property {number} gcUs minor GC µs per request
 * @property {number} scavenges
 * @property {number} majorMs mark-compact and incremental marking ms over the run
 * @property {number} majors their count
 * @property {number} heap MiB of V8 heap in use after the run
 */

/** The GC columns of a sample. @param {ReturnType<typeof gcBetween>} gc @param {number} n requests */
const sampleGc = (gc, n) => ({ gcUs: gc.minorMs * 1e3 / n, scavenges: gc.minorCount, majorMs: gc.majorMs, majors: gc.majorCount })

/** @param {number[]} xs */
const median = (xs) => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] ?? NaN : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2
}

async function main () {
  if (roots.length === 0) throw new Error('usage: node bench/compare.js [--rounds N] [--duration S] [--distinct N] [--alg A] ROOT[:quiet][:nocache] ...')
  const dir = mkdtempSync(join(tmpdir(), 'jotgate-compare-'))
  const keyPrefix = `jotgate-compare:${process.pid}:${Date.now()}:`
  /** @type {import('./servers.js').ServerHandle[]} */
  const started = []
  try {
    const keys = generateKeys(dir)
    const key = keys[settings.alg]
    if (key === undefined) throw new Error(`--alg: one of ${Object.keys(keys).join(', ')}`)
    const [one] = await signTokens(key, 1, 'compare')
    const tokens = settings.distinct > 0 ? (await signTokens(key, settings.distinct, 'compare-distinct')).map((t) => t.token) : [/** @type {{ token: string }} */ (one).token]
    const env = { ...process.env }
    delete env.LOG_LEVEL
    const upstream = await spawnServer('upstream', ['upstream'], { env })
    started.push(upstream)
    const baseline = await spawnServer('baseline', ['baseline', upstream.url], { env })
    started.push(baseline)
    const servers = [{ label: 'baseline', handle: baseline, jotgate: false }]
    for (const [i, spec] of roots.entries()) {
      const [root = '.', ...flags] = spec.split(':')
      const config = gatewayConfig({ keys, upstream: upstream.url, redisUrl: settings.redisUrl, keyPrefix, logLevel: 'info', replica: true, requestLines: !flags.includes('quiet') })
      if (flags.includes('nocache')) Object.assign(config.tokens, { cacheSize: 0 })
      const file = join(dir, `gateway-${i}.json`)
      writeFileSync(file, JSON.stringify(config))
      const handle = await spawnServer(spec, ['jotgate', file], { env, script: join(resolve(root), 'bench', 'servers.js') })
      started.push(handle)
      servers.push({ label: `${i + 1}: ${spec}`, handle, jotgate: true })
    }
    // Priming: JIT and pools before anything is measured.
    for (const s of servers) await drive({ urls: [s.handle.url], connections: settings.connections, duration: 2, tokens: [/** @type {{ token: string }} */ (one).token] }).done
    /** @type {Sample[][]} */
    const samples = servers.map(() => [])
    for (let round = 1; round <= settings.rounds; round++) {
      const order = servers.map((_, i) => i).sort(() => Math.random() - 0.5)
      for (const i of order) {
        const s = /** @type {typeof servers[number]} */ (servers[i])
        if (s.jotgate) await s.handle.reload()
        const gcBefore = await s.handle.stats()
        /** @type {number[]} */ let before = []
        /** @type {number[]} */ let after = []
        /** @type {() => Record<string, number>} */ let stopRss = () => ({})
        const cpuNow = () => [cpuMicros(s.handle.pid) ?? NaN, threadCpuMicros(s.handle.pid, s.handle.pid) ?? NaN]
        const result = await drive({
          urls: [s.handle.url],
          connections: settings.connections,
          warmup: settings.warmup,
          duration: settings.duration,
          tokens,
          onWindowStart: () => { before = cpuNow(); stopRss = watchRss({ server: s.handle.pid }) },
          onWindowEnd: () => { after = cpuNow() }
        }).done
        const gcAfter = await s.handle.stats()
        const n = result.requests + result.non2xx
        if (result.non2xx > 0 || result.errors > 0) log(`   ${s.label}: ${result.non2xx} non-2xx, ${result.errors} errors`)
        const mine = /** @type {Sample[]} */ (samples[i])
        mine.push({
          rps: result.rps,
          p99: result.p99,
          rss: (stopRss().server ?? NaN) / 2 ** 20,
          cpu: ((after[0] ?? NaN) - (before[0] ?? NaN)) / n,
          main: ((after[1] ?? NaN) - (before[1] ?? NaN)) / n,
          ...sampleGc(gcBetween(gcBefore, gcAfter), n),
          heap: (gcAfter.heapUsed ?? NaN) / 2 ** 20
        })
      }
      log(`round ${round}: ${servers.map((s, i) => {
        const x = /** @type {Sample} */ (samples[i]?.at(-1))
        return `${s.label} ${x.rps.toFixed(0)} req/s p99 ${x.p99.toFixed(2)} ms ${x.rss.toFixed(0)} MiB ${x.cpu.toFixed(1)}/${x.main.toFixed(1)} µs gc ${x.gcUs.toFixed(1)} µs (${x.scavenges}) major ${x.majorMs.toFixed(1)} ms (${x.majors}) heap ${x.heap.toFixed(0)} MiB`
      }).join(' | ')}`)
    }
    const base = /** @type {Sample[]} */ (samples[0])
    log('\nmedians (CPU µs per request: process / main thread); ratios to the baseline: of the medians, and the median of same-round ratios')
    for (const [i, s] of servers.entries()) {
      const mine = /** @type {Sample[]} */ (samples[i])
      const rps = median(mine.map((x) => x.rps))
      const paired = median(mine.map((x, k) => x.rps / (base[k]?.rps ?? NaN)))
      log(`${s.label.padEnd(28)} ${rps.toFixed(0).padStart(6)} req/s  p99 ${median(mine.map((x) => x.p99)).toFixed(2)} ms  ${median(mine.map((x) => x.rss)).toFixed(0)} MiB  ${median(mine.map((x) => x.cpu)).toFixed(1)} / ${median(mine.map((x) => x.main)).toFixed(1)} µs  x${(rps / median(base.map((x) => x.rps))).toFixed(3)}  same-round x${paired.toFixed(3)}`)
    }
  } finally {
    await Promise.all(started.map((h) => h.stop().catch(() => null)))
    await removeKeys(keyPrefix, settings.redisUrl).catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((err) => { process.stderr.write(`${err?.stack ?? err}\n`); process.exitCode = 1 })
