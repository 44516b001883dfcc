/**
 * `npm run bench -- --soak` (or `node bench/soak.js` after a build): the
 * memory half of the performance issue. jotgate (real Redis, revocation
 * replica on, the default 10,000-entry verified-token cache) serves a ring
 * of more distinct tokens (HS256 unless BENCH_SOAK_ALG names RS256, ES256
 * or EdDSA, whose checks run on the thread pool) than its cache holds, so the cache fills
 * and evicts all the time, while one token per second is revoked through
 * the admin listener (the replica grows with live revocations, as it should).
 * Its RSS is sampled every few seconds; the summary compares the first
 * minute after warm-up with the last one.
 *
 * Settings (environment): BENCH_SOAK seconds (300), BENCH_SOAK_TOKENS
 * (30000), BENCH_SOAK_ALG (HS256), BENCH_CONNECTIONS (50), REDIS_URL
 * (redis://127.0.0.1:6379).
 * Writes bench/soak-results.json.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnServer } from './servers.js'
import { commonSettings, drive, envNumber, removeKeys, rssBytes } from './load.js'
import { gatewayConfig, generateKeys, signTokens } from './tokens.js'

const env = process.env
const { connections, redisUrl } = commonSettings()
const settings = {
  seconds: envNumber('BENCH_SOAK', 300),
  tokens: envNumber('BENCH_SOAK_TOKENS', 30_000),
  connections,
  alg: /** @type {import('./tokens.js').Alg} */ (env.BENCH_SOAK_ALG ?? 'HS256'),
  warmupSeconds: 20,
  sampleMs: 5000,
  redisUrl
}
const RESULTS_FILE = fileURLToPath(new URL('soak-results.json', import.meta.url))
const log = (/** @type {string} */ line) => process.stderr.write(`${line}\n`)
const MiB = 1024 * 1024

/** @param {number[]} xs */
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : /** @type {number} */ (s[Math.floor(s.length / 2)])
}

export async function soak () {
  const dir = mkdtempSync(join(tmpdir(), 'jotgate-soak-'))
  /** @type {import('./servers.js').ServerHandle[]} */
  const started = []
  const childEnv = { ...env }
  delete childEnv.LOG_LEVEL
  const keyPrefix = `jotgate-soak:${process.pid}:${Date.now()}:`
  try {
    const keys = generateKeys(dir)
    const key = keys[settings.alg]
    if (key === undefined) throw new Error(`BENCH_SOAK_ALG: one of ${Object.keys(keys).join(', ')}`)
    log(`soak: signing ${settings.tokens} ${settings.alg} tokens (cache: 10,000 entries)...`)
    const tokens = (await signTokens(key, settings.tokens, 'soak')).map((t) => t.token)
    const revocable = await signTokens(key, settings.seconds + settings.warmupSeconds + 10, 'soak-revoked')
    const upstream = await spawnServer('upstream', ['upstream'], { env: childEnv })
    started.push(upstream)
    const file = join(dir, 'gateway.json')
    writeFileSync(file, JSON.stringify(gatewayConfig({ keys, upstream: upstream.url, redisUrl: settings.redisUrl, keyPrefix, logLevel: 'info', replica: true })))
    const jotgate = await spawnServer('jotgate', ['jotgate', file], { env: childEnv })
    started.push(jotgate)

    /** @type {{ at: number, rssMiB: number }[]} */
    const samples = []
    const began = Date.now()
    const sampler = setInterval(() => {
      const rss = rssBytes(jotgate.pid)
      if (rss !== undefined) samples.push({ at: (Date.now() - began) / 1000, rssMiB: rss / MiB })
    }, settings.sampleMs)
    let revoked = 0
    let revokeFailures = 0
    const revoker = setInterval(() => {
      const item = revocable[revoked++]
      if (item === undefined) return
      fetch(`http://127.0.0.1:${jotgate.adminPort}/revocations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jti: item.jti, exp: item.exp })
      }).then((res) => { if (res.status !== 201) revokeFailures++ }, () => { revokeFailures++ })
    }, 1000)
    log(`soak: ${settings.warmupSeconds} s warm-up, then ${settings.seconds} s of load with ${settings.connections} connections...`)
    const result = await drive({
      urls: [jotgate.url],
      connections: settings.connections,
      warmup: settings.warmupSeconds,
      duration: settings.seconds,
      tokens
    }).done
    clearInterval(sampler)
    clearInterval(revoker)

    const measured = samples.filter((s) => s.at >= settings.warmupSeconds)
    const firstMinute = measured.filter((s) => s.at < settings.warmupSeconds + 60).map((s) => s.rssMiB)
    const lastMinute = measured.filter((s) => s.at >= settings.warmupSeconds + settings.seconds - 60).map((s) => s.rssMiB)
    const summary = {
      date: new Date().toISOString(),
      cpu: cpus()[0]?.model,
      cores: cpus().length,
      node: process.version,
      seconds: settings.seconds,
      distinctTokens: settings.tokens,
      rps: Math.round(result.rps),
      non2xx: result.non2xx,
      errors: result.errors,
      revocations: revoked,
      revocationFailures: revokeFailures,
      rssMiB: {
        firstMinuteMedian: round(median(firstMinute)),
        lastMinuteMedian: round(median(lastMinute)),
        peak: round(Math.max(...measured.map((s) => s.rssMiB))),
        growth: round(median(lastMinute) / median(firstMinute) - 1, 3)
      },
      samples: measured.map((s) => ({ at: round(s.at), rssMiB: round(s.rssMiB) }))
    }
    writeFileSync(RESULTS_FILE, `${JSON.stringify(summary, null, 2)}\n`)
    const r = summary.rssMiB
    // The revoked tokens were never sent, so every request is a 2xx.
    process.stdout.write([
      `soak: ${summary.seconds} s, ${summary.distinctTokens} distinct tokens through a 10,000-entry cache, ${summary.rps} req/s, ${summary.non2xx} non-2xx, ${summary.errors} errors, ${revoked} revocations (${revokeFailures} failed)`,
      `RSS MiB: first minute median ${r.firstMinuteMedian}, last minute median ${r.lastMinuteMedian}, peak ${r.peak}, growth ${(r.growth * 100).toFixed(1)}%`,
      `per minute: ${perMinute(measured).map((m) => m.toFixed(0)).join(' ')}`,
      ''
    ].join('\n'))
    return summary
  } finally {
    await Promise.all(started.map((h) => h.stop().catch(() => null)))
    rmSync(dir, { recursive: true, force: true })
    await removeKeys(keyPrefix, settings.redisUrl).catch((err) => log(`soak: could not remove its Redis keys: ${err}`))
  }
}

/** @param {number} x @param {number} [digits] */
function round (x, digits = 1) {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

/** Median RSS of each whole minute of samples. @param {{ at: number, rssMiB: number }[]} samples */
function perMinute (samples) {
  if (samples.length === 0) return []
  const start = /** @type {{ at: number }} */ (samples[0]).at
  /** @type {number[][]} */
  const buckets = []
  for (const s of samples) (buckets[Math.floor((s.at - start) / 60)] ??= []).push(s.rssMiB)
  return buckets.filter((b) => b !== undefined).map(median)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  soak().catch((err) => { log(`soak failed: ${err?.stack ?? err}`); process.exitCode = 1 })
}
