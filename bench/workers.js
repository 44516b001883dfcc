/**
 * `npm run bench -- --workers` (or `node bench/workers.js` after a build):
 * `server.workers: 1` against `server.workers: 2`, each started as
 * `jotgate start` starts it (the built CLI, node:cluster for 2), HS256 with
 * one token repeated, real Redis with the revocation replica, interleaved
 * repetitions. CPU per request counts the whole process tree (primary and
 * workers). On a 2-core machine the load driver, the upstream and Redis
 * share the cores with the workers, so the figure is what a second worker
 * buys on such a machine, not on a dedicated one.
 *
 * Settings (environment): BENCH_REPS (3), BENCH_DURATION seconds (5),
 * BENCH_WARMUP seconds (1), BENCH_CONNECTIONS (50), REDIS_URL.
 * Writes bench/workers-results.json.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnServer } from './servers.js'
import { commonSettings, cpuMicros, drive, removeKeys } from './load.js'
import { median } from './report.js'
import { gatewayConfig, generateKeys, signTokens } from './tokens.js'

const env = process.env
const settings = commonSettings()
const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url))
const RESULTS_FILE = fileURLToPath(new URL('workers-results.json', import.meta.url))
const log = (/** @type {string} */ line) => process.stderr.write(`${line}\n`)

/** A free loopback port (cluster workers share one fixed port). */
function freePort () {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const address = s.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      s.close(() => resolve(port))
    })
  })
}

/** Every pid of the process tree under `pid`, itself included. @param {number} pid @returns {number[]} */
function tree (pid) {
  /** @type {number[]} */
  const out = [pid]
  try {
    for (const tid of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) out.push(...tree(Number(tid)))
  } catch {}
  return out
}

/** @param {number} pid */
const treeCpu = (pid) => tree(pid).reduce((sum, p) => sum + (cpuMicros(p) ?? 0), 0)

/**
 * Starts `jotgate start --config file` and waits until `url` answers.
 * @param {string} file @param {string} url
 */
async function startCli (file, url) {
  const child = spawn(process.execPath, [CLI, 'start', '--config', file], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...env, LOG_LEVEL: '' } })
  let stderr = ''
  child.stderr.on('data', (c) => { stderr = (stderr + c).slice(-4000) })
  const deadline = Date.now() + 20_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`jotgate exited with ${child.exitCode}\n${stderr}`)
    const ok = await fetch(url).then(() => true, () => false)
    if (ok) break
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`jotgate did not answer within 20 s\n${stderr}`) }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return {
    pid: /** @type {number} */ (child.pid),
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve(child.exitCode)
      child.once('exit', (code) => resolve(code))
      child.kill('SIGTERM')
    })
  }
}

export async function workers () {
  const dir = mkdtempSync(join(tmpdir(), 'jotgate-workers-'))
  /** @type {Array<{ stop: () => Promise<unknown> }>} */
  const started = []
  const prefix = `jotgate-workers:${process.pid}:${Date.now()}:`
  try {
    const keys = generateKeys(dir)
    const [item] = await signTokens(keys.HS256, 1, 'workers')
    const token = /** @type {{ token: string }} */ (item).token
    const upstream = await spawnServer('upstream', ['upstream'])
    started.push(upstream)
    /** @type {Record<string, { url: string, pid: number }>} */
    const servers = {}
    for (const n of [1, 2]) {
      const port = await freePort()
      const config = gatewayConfig({ keys, upstream: upstream.url, redisUrl: settings.redisUrl, keyPrefix: `${prefix}${n}:`, logLevel: 'info', replica: true })
      const file = join(dir, `workers-${n}.json`)
      writeFileSync(file, JSON.stringify({ ...config, server: { host: '127.0.0.1', port, workers: n }, admin: undefined }))
      const url = `http://127.0.0.1:${port}`
      const handle = await startCli(file, url)
      started.push(handle)
      servers[String(n)] = { url, pid: handle.pid }
    }
    /** @type {Record<string, Array<{ rps: number, p99: number, cpuUsPerReq: number }>>} */
    const runs = { 1: [], 2: [] }
    for (let rep = 0; rep < settings.reps; rep++) {
      for (const n of rep % 2 === 0 ? ['1', '2'] : ['2', '1']) {
        const server = /** @type {{ url: string, pid: number }} */ (servers[n])
        let before = 0
        let after = 0
        const result = await drive({
          urls: [server.url],
          connections: settings.connections,
          warmup: settings.warmup,
          duration: settings.duration,
          tokens: [token],
          onWindowStart: () => { before = treeCpu(server.pid) },
          onWindowEnd: () => { after = treeCpu(server.pid) }
        }).done
        const answered = result.requests + result.non2xx
        runs[n]?.push({ rps: result.rps, p99: result.p99, cpuUsPerReq: answered > 0 ? (after - before) / answered : NaN })
        log(`workers ${n}, rep ${rep + 1}: ${Math.round(result.rps)} req/s`)
      }
    }
    const summary = Object.fromEntries(Object.entries(runs).map(([n, rs]) => [n, {
      rps: Math.round(median(rs.map((r) => r.rps)) ?? NaN),
      p99: Math.round((median(rs.map((r) => r.p99)) ?? NaN) * 100) / 100,
      cpuUsPerReq: Math.round(median(rs.map((r) => r.cpuUsPerReq)) ?? NaN)
    }]))
    const ratio = (summary['2']?.rps ?? NaN) / (summary['1']?.rps ?? NaN)
    writeFileSync(RESULTS_FILE, `${JSON.stringify({ date: new Date().toISOString(), cpu: cpus()[0]?.model, cores: cpus().length, node: process.version, settings, summary, ratio, runs }, null, 2)}\n`)
    process.stdout.write([
      'server.workers, HS256 one token repeated, replica on, medians of interleaved runs:',
      ...Object.entries(summary).map(([n, s]) => `  ${n} worker${n === '1' ? ' ' : 's'}: ${s.rps} req/s, p99 ${s.p99} ms, ${s.cpuUsPerReq} µs CPU per request (process tree)`),
      `  2 workers / 1 worker: ${ratio.toFixed(2)}x req/s on ${cpus().length} cores shared with the driver, upstream and Redis`,
      ''
    ].join('\n'))
  } finally {
    await Promise.all(started.map((h) => h.stop().catch(() => null)))
    rmSync(dir, { recursive: true, force: true })
    await removeKeys(prefix, settings.redisUrl).catch((err) => log(`workers: could not remove its Redis keys: ${err}`))
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  workers().catch((err) => { log(`workers failed: ${err?.stack ?? err}`); process.exitCode = 1 })
}
