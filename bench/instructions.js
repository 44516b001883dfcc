/**
 * `npm run bench -- --instructions` (or `node bench/instructions.js` after a
 * build): instructions per request under valgrind's callgrind, for the
 * baseline and for jotgate (HS256, one token repeated, and distinct tokens
 * each sent once), one server at a time. Instructions do not depend on
 * what else the machine is doing, so two builds, or jotgate and the
 * baseline, compare to within a few percent on a machine whose req/s move
 * by half within minutes. They are not time: a cache miss or a system call
 * costs more than its instructions say, and the kernel's share (socket
 * writes) is not counted at all.
 *
 * Each server runs under `valgrind --tool=callgrind` (about 50 times
 * slower), gets `BENCH_INSTR_WARM` requests of warm-up (so that V8 has
 * optimized what it will), then its counters are zeroed, `BENCH_INSTR_COUNTED`
 * requests are sent and the counters dumped (callgrind_control). The main
 * thread and the whole process are reported; the upstream runs outside
 * valgrind.
 *
 * Settings (environment): BENCH_INSTR_WARM (5000), BENCH_INSTR_COUNTED
 * (1500), BENCH_INSTR_CONNECTIONS (10), BENCH_INSTR_ALG (HS256), REDIS_URL.
 * Writes bench/instructions-results.json.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnServer } from './servers.js'
import { drive, envNumber, removeKeys } from './load.js'
import { ALGS, gatewayConfig, generateKeys, signTokens } from './tokens.js'

const env = process.env
const settings = {
  warm: envNumber('BENCH_INSTR_WARM', 5000),
  counted: envNumber('BENCH_INSTR_COUNTED', 1500),
  connections: envNumber('BENCH_INSTR_CONNECTIONS', 10),
  alg: /** @type {import('./tokens.js').Alg} */ (env.BENCH_INSTR_ALG ?? 'HS256'),
  redisUrl: env.REDIS_URL ?? 'redis://127.0.0.1:6379'
}
const RESULTS_FILE = fileURLToPath(new URL('instructions-results.json', import.meta.url))
const log = (/** @type {string} */ line) => process.stderr.write(`${line}\n`)

/**
 * Instructions (Ir) per thread in the callgrind dump number `dump` of `pid`
 * (file names `<prefix>.<pid>.<dump>-<thread>`, thread 01 the main one).
 * @param {string} dir @param {number} pid @param {number} dump
 * @returns {{ main: number, all: number }}
 */
function readDump (dir, pid, dump) {
  const files = readdirSync(dir).filter((f) => f.startsWith(`cg.${pid}.${dump}-`))
  if (files.length === 0) throw new Error(`no callgrind dump ${dump} of ${pid}`)
  let main = 0
  let all = 0
  for (const f of files) {
    const m = /^(?:summary|totals): (\d+)/m.exec(readFileSync(join(dir, f), 'utf8'))
    const ir = m === null ? 0 : Number(m[1])
    all += ir
    if (f.endsWith('-01')) main = ir
  }
  return { main, all }
}

/**
 * @typedef {object} Case
 * @property {string} name
 * @property {string[]} args servers.js role and argument
 * @property {string[]} tokens the counted requests' tokens, one lap
 * @property {string[]} warmTokens
 */

/**
 * One server under callgrind: warm-up, zero, counted requests, dump.
 * @param {Case} c @param {string} dir
 */
async function count (c, dir) {
  const h = await spawnServer(c.name, c.args, {
    execPath: 'valgrind',
    // V8 writes and rewrites machine code: callgrind must look for it
    // everywhere (--smc-check), and one file per thread tells the main
    // thread from V8's and libuv's helpers.
    execArgv: ['--tool=callgrind', '--smc-check=all-non-file', '--separate-threads=yes', `--callgrind-out-file=${join(dir, 'cg.%p')}`, process.execPath],
    startTimeoutMs: 300_000
  })
  try {
    // Under valgrind jotgate takes a while to trust its revocation replica
    // (503 until then): the warm-up starts once a request is answered 200.
    for (let tries = 0; ; tries++) {
      const res = await fetch(`${h.url}/`, { headers: { authorization: `Bearer ${c.warmTokens[0]}` } }).catch(() => undefined)
      await res?.arrayBuffer()
      if (res?.status === 200) break
      if (tries >= 120) throw new Error(`${c.name}: not answering 200 after 60 s (last: ${res?.status ?? 'no answer'})`)
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
    const warm = await drive({ urls: [h.url], connections: settings.connections, duration: 1800, requests: settings.warm, tokens: c.warmTokens }).done
    if (warm.non2xx + warm.errors > 0) log(`  warm-up: ${warm.non2xx} non-2xx, ${warm.errors} errors (${JSON.stringify(warm.statusCodes)})`)
    execFileSync('callgrind_control', ['-z', String(h.pid)], { stdio: 'ignore' })
    const r = await drive({ urls: [h.url], connections: settings.connections, duration: 1800, requests: c.tokens.length, tokens: c.tokens }).done
    execFileSync('callgrind_control', ['-d', String(h.pid)], { stdio: 'ignore' })
    const answered = r.requests + r.non2xx
    if (r.non2xx + r.errors > 0) throw new Error(`${c.name}: ${r.non2xx} non-2xx, ${r.errors} errors`)
    const ir = readDump(dir, h.pid, 1)
    return { name: c.name, requests: answered, firstSends: r.firstSends, mainPerRequest: ir.main / answered, allPerRequest: ir.all / answered }
  } finally {
    await h.stop()
  }
}

export async function instructions () {
  if (!ALGS.includes(settings.alg)) throw new Error(`BENCH_INSTR_ALG: one of ${ALGS.join(', ')}`)
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'ignore' })
  } catch {
    throw new Error('valgrind is not installed (Debian: apt-get install valgrind)')
  }
  const dir = mkdtempSync(join(tmpdir(), 'jotgate-instr-'))
  const keyPrefix = `jotgate-bench-instr:${process.pid}:${Date.now()}:`
  /** @type {import('./servers.js').ServerHandle | undefined} */
  let upstream
  try {
    const keys = generateKeys(dir)
    const key = keys[settings.alg]
    const [one] = await signTokens(key, 1, 'instr-repeated')
    const repeated = [/** @type {{ token: string }} */ (one).token]
    const distinct = (await signTokens(key, settings.counted, 'instr-distinct')).map((t) => t.token)
    // Others than the counted ones, so that the counted lap finds none cached.
    const warmDistinct = (await signTokens(key, Math.min(settings.warm, 3000), 'instr-warm')).map((t) => t.token)
    upstream = await spawnServer('upstream', ['upstream'])
    const configFile = join(dir, 'gateway.json')
    writeFileSync(configFile, JSON.stringify(gatewayConfig({ keys, upstream: upstream.url, redisUrl: settings.redisUrl, keyPrefix, logLevel: 'info', replica: true })))
    /** The one token, `counted` times: a lap of the counted requests. */
    const repeatedLap = Array.from({ length: settings.counted }, () => /** @type {string} */ (repeated[0]))
    /** @type {Case[]} */
    const cases = [
      { name: 'baseline (http-proxy)', args: ['baseline', upstream.url], tokens: repeatedLap, warmTokens: repeated },
      { name: `${settings.alg} repeated`, args: ['jotgate', configFile], tokens: repeatedLap, warmTokens: repeated },
      { name: `${settings.alg} distinct, each once`, args: ['jotgate', configFile], tokens: distinct, warmTokens: warmDistinct }
    ]
    const rows = []
    for (const c of cases) {
      log(`${c.name}: under callgrind, ${settings.warm} requests of warm-up, then ${c.tokens.length} counted...`)
      const row = await count(c, dir)
      log(`  ${Math.round(row.mainPerRequest)} instructions per request on the main thread, ${Math.round(row.allPerRequest)} in all`)
      rows.push(row)
    }
    const base = rows[0]
    const lines = [
      `jotgate bench --instructions: valgrind callgrind, ${cpus()[0]?.model ?? 'unknown'}, node ${process.version}, ${new Date().toISOString()}`,
      `${settings.warm} requests of warm-up, then ${settings.counted} counted, ${settings.connections} connections; instructions per request (thousands)`,
      '',
      `${'case'.padEnd(28)} ${'main'.padStart(8)} ${'x base'.padStart(7)} ${'all'.padStart(8)} ${'x base'.padStart(7)}`,
      ...rows.map((r) => `${r.name.padEnd(28)} ${(r.mainPerRequest / 1000).toFixed(1).padStart(8)} ${(r.mainPerRequest / (base?.mainPerRequest ?? NaN)).toFixed(2).padStart(7)} ${(r.allPerRequest / 1000).toFixed(1).padStart(8)} ${(r.allPerRequest / (base?.allPerRequest ?? NaN)).toFixed(2).padStart(7)}`),
      '',
      'main: the main thread (JavaScript, parsing, socket calls); all: every thread (V8\'s compilers and collector, libuv\'s pool: public-key checks). Kernel work is not counted.'
    ]
    process.stdout.write(`${lines.join('\n')}\n`)
    writeFileSync(RESULTS_FILE, `${JSON.stringify({ settings, node: process.version, date: new Date().toISOString(), rows }, null, 2)}\n`)
    log(`wrote ${RESULTS_FILE}`)
  } finally {
    await upstream?.stop()
    await removeKeys(keyPrefix, settings.redisUrl).catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  instructions().catch((err) => {
    log(err?.stack ?? String(err))
    process.exitCode = 1
  })
}
