/**
 * Medians per scenario, ratios to the baseline of the same run, and the
 * table printed at the end.
 */

/** RSS under load: at most this multiple of the baseline's (issue 8). */
export const MAX_RSS_RATIO = 1.5

/** @param {(number | null | undefined)[]} values */
export function median (values) {
  const v = /** @type {number[]} */ (values.filter((x) => typeof x === 'number' && Number.isFinite(x))).sort((a, b) => a - b)
  if (v.length === 0) return null
  const mid = Math.floor(v.length / 2)
  return v.length % 2 === 1 ? /** @type {number} */ (v[mid]) : (/** @type {number} */ (v[mid - 1]) + /** @type {number} */ (v[mid])) / 2
}

/**
 * @param {import('./run.js').Scenario[]} scenarios
 * @param {Record<string, any[]>} raw per scenario, one entry per repetition
 */
export function summarize (scenarios, raw) {
  const base = scenarios.find((s) => s.server === 'baseline')
  const baseRuns = base === undefined ? [] : raw[base.name] ?? []
  const medians = (/** @type {any[]} */ runs) => ({
    rps: median(runs.map((r) => r.rps)),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    cpuUsPerReq: median(runs.map((r) => r.cpuUsPerReq.server)),
    upstreamCpuUsPerReq: median(runs.map((r) => r.cpuUsPerReq.upstream)),
    redisCpuUsPerReq: median(runs.map((r) => r.cpuUsPerReq.redis)),
    driverCpuUsPerReq: median(runs.map((r) => r.cpuUsPerReq.driver)),
    otherCpuShare: median(runs.map((r) => r.otherCpuShare)),
    rssMiB: median(runs.map((r) => r.rssBytes === null ? null : r.rssBytes / 1048576)),
    requests: median(runs.map((r) => r.requests)),
    non2xx: runs.reduce((n, r) => n + r.non2xx, 0),
    errors: runs.reduce((n, r) => n + r.errors, 0),
    warmCacheRuns: runs.filter((r) => r.cacheCold === false).length
  })
  const b = medians(baseRuns)
  const baseBySeq = new Map(baseRuns.map((r) => [r.seq, r]))
  return scenarios.map((s) => {
    const runs = raw[s.name] ?? []
    const m = medians(runs)
    // Each jotgate run against its partner, the baseline run next to it
    // (see run.js): the row's ratio and p99 difference are the medians of
    // these, which a machine drifting between runs moves much less than a
    // ratio of the two medians (kept as ratioOfMedians).
    const pairs = runs.map((r) => {
      const partner = baseBySeq.get(r.partner)
      return partner === undefined || !partner.rps ? null : { rep: r.rep, ratio: r.rps / partner.rps, p99DeltaMs: r.p99 - partner.p99 }
    }).filter((p) => p !== null)
    const pairRatios = pairs.map((p) => p.ratio)
    const ratio = median(pairRatios)
    const p99DeltaMs = median(pairs.map((p) => p.p99DeltaMs))
    const ratioOfMedians = m.rps !== null && b.rps ? m.rps / b.rps : null
    const rssRatio = m.rssMiB !== null && b.rssMiB ? m.rssMiB / b.rssMiB : null
    const isJot = s.server !== 'baseline'
    return {
      name: s.name,
      server: s.server,
      alg: s.alg ?? null,
      kind: s.kind ?? null,
      median: m,
      ratio,
      ratioRange: pairRatios.length === 0 ? null : [Math.min(...pairRatios), Math.max(...pairRatios)],
      ratioOfMedians,
      pairs,
      p99DeltaMs,
      rssRatio,
      // Share of requests that needed a signature check: jotgate's own
      // count of cache misses over the window (the driver's count of each
      // token's first send when a server does not report it).
      signatureCheckShare: s.kind === 'distinct' && m.requests
        ? median(runs.map((r) => r.requests + r.non2xx > 0 ? Math.min(1, (r.signatureChecks ?? r.firstSends) / (r.requests + r.non2xx)) : null))
        : null,
      targets: isJot ? { minRatio: s.minRatio ?? null, maxP99DeltaMs: s.maxP99DeltaMs ?? null, maxRssRatio: MAX_RSS_RATIO } : null,
      verdict: isJot
        ? {
            rps: s.minRatio === undefined || ratio === null ? null : ratio >= s.minRatio,
            p99: s.maxP99DeltaMs === undefined || p99DeltaMs === null ? null : p99DeltaMs <= s.maxP99DeltaMs,
            rss: rssRatio === null ? null : rssRatio <= MAX_RSS_RATIO
          }
        : null,
      reps: runs
    }
  })
}

const fixed = (/** @type {number | null} */ x, /** @type {number} */ d) => x === null ? '-' : x.toFixed(d)

/**
 * @param {ReturnType<typeof summarize>} summary
 * @param {{ revocation: any[], latency?: any, settings: any, machine: any, verifyUs?: Record<string, number>, placed?: { server: string, rest: string, ok: boolean } | null }} extra
 */
export function formatTable (summary, { revocation, latency = null, settings, machine, verifyUs, placed = null }) {
  const head = ['scenario', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'RSS MiB', 'x base', 'runs', 'p99 Δ ms', 'redis µs/req', 'others %', 'target', 'result']
  const rows = summary.map((s) => {
    const m = s.median
    const t = s.targets
    const target = t === null ? '' : [t.minRatio === null ? null : `>=${t.minRatio.toFixed(2)}x`, t.maxP99DeltaMs === null ? null : `Δp99<=${t.maxP99DeltaMs}`, `rss<=${t.maxRssRatio}x`].filter(Boolean).join(' ')
    const v = s.verdict
    const misses = v === null ? [] : [v.rps === false ? 'req/s' : null, v.p99 === false ? 'p99' : null, v.rss === false ? 'rss' : null].filter(Boolean)
    const result = v === null ? '' : misses.length === 0 ? 'ok' : `MISS ${misses.join(',')}`
    return [
      s.name, fixed(m.rps, 0), fixed(m.p50, 2), fixed(m.p99, 2), fixed(m.cpuUsPerReq, 0), fixed(m.rssMiB, 0),
      s.server === 'baseline' ? '1.00' : fixed(s.ratio, 2),
      s.ratioRange === null ? '' : s.ratioRange.map((x) => fixed(x, 2)).join('-'),
      s.server === 'baseline' ? '' : `${s.p99DeltaMs !== null && s.p99DeltaMs >= 0 ? '+' : ''}${fixed(s.p99DeltaMs, 2)}`,
      fixed(m.redisCpuUsPerReq, 1), m.otherCpuShare === null ? '-' : (100 * m.otherCpuShare).toFixed(0), target, result
    ]
  })
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)))
  const line = (/** @type {string[]} */ cells) => cells.map((c, i) => (i === 0 || i >= 11 ? c.padEnd(/** @type {number} */ (widths[i])) : c.padStart(/** @type {number} */ (widths[i])))).join('  ').trimEnd()
  const out = [
    `jotgate bench: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}, ${machine.date}`,
    `${settings.reps} interleaved repetitions x ${settings.duration} s after ${settings.warmup} s warm-up, ${settings.connections} connections; every jotgate run next to a baseline run (its partner); medians per scenario`,
    'x base: median over the repetitions of req/s / the partner\'s req/s (runs: lowest-highest of those); p99 Δ: the same for p99 - the partner\'s p99',
    placed === null ? 'not pinned: the servers, the driver and the upstream share every CPU as the kernel places them' : `pinned (taskset): every server's main thread on CPU ${placed.server}, the driver and the upstream on ${placed.rest}${placed.ok ? '' : ' (some taskset calls failed)'}`,
    '',
    line(head),
    line(head.map((_, i) => '-'.repeat(/** @type {number} */ (widths[i])))),
    ...rows.map(line),
    ''
  ]
  const bad = summary.filter((s) => s.median.non2xx + s.median.errors > 0)
  for (const s of bad) out.push(`WARNING ${s.name}: ${s.median.non2xx} non-2xx responses, ${s.median.errors} errors over all repetitions`)
  const distinct = summary.filter((s) => s.signatureCheckShare !== null)
  if (distinct.length > 0) {
    const warm = distinct.reduce((n, s) => n + s.median.warmCacheRuns, 0)
    // Runs the time limit (distinctMaxSeconds) ended before their last lap.
    const cut = distinct.flatMap((s) => s.reps).filter((r) => r.requests + r.non2xx < settings.distinct * settings.distinctLaps * 0.99).length
    out.push(`distinct: every jotgate run starts on a reloaded config (as on SIGHUP), so with an empty verified-token cache${warm > 0 ? ` (except ${warm} run(s), see results.json cacheCold)` : ''}; ` +
      `it sends each of its ${settings.distinct} tokens ${settings.distinctLaps === 1 ? 'once' : `${settings.distinctLaps} times`} (the window ends there, not after ${settings.duration} s${cut > 0 ? `; ${cut} run(s) were stopped at ${settings.distinctMaxSeconds} s before that` : ''}); ` +
      `share of requests that needed a signature check (median run, jotgate's count of verified-token cache misses): ${distinct.map((s) => `${s.alg} ${(100 * /** @type {number} */ (s.signatureCheckShare)).toFixed(0)}%`).join(', ')}`)
  }
  if (verifyUs !== undefined) out.push(`node:crypto alone on this machine, µs per signature check: ${Object.entries(verifyUs).map(([k, v]) => `${k} ${v}`).join(', ')}`)
  out.push('CPU µs/req: user+system time of the server process over the run / responses; redis µs/req: the same for redis-server; RSS: peak VmRSS during the run;')
  out.push('others %: CPU taken by processes outside the benchmark during the run, as a share of the whole machine (noise: high values make a run unreliable).')
  // The baseline is one process doing the same thing every time: how far
  // its own runs spread is how far the machine drifted during this run
  // (shared hosts speed up and slow down within seconds, whatever runs
  // inside this one).
  const baseRps = summary.find((s) => s.server === 'baseline')?.reps.map((r) => r.rps).filter((x) => Number.isFinite(x)) ?? []
  const baseMedian = median(baseRps)
  if (baseRps.length > 1 && baseMedian) {
    const lo = Math.min(...baseRps)
    const hi = Math.max(...baseRps)
    out.push(`baseline drift: its ${baseRps.length} runs served ${lo.toFixed(0)}-${hi.toFixed(0)} req/s, ${(100 * (hi - lo) / baseMedian).toFixed(0)}% of their median from slowest to fastest: how far the machine itself moved during this run (the same process, the same work).`)
  }
  if (latency !== null) {
    const sign = (/** @type {number | null} */ x) => `${x !== null && x >= 0 ? '+' : ''}${fixed(x, 2)}`
    out.push(`latency at a fixed ${latency.rate} req/s (${latency.connections} connections, ${latency.pairs} pairs of ${latency.seconds}-s windows, baseline and HS256 repeated by turns; medians): ` +
      `p50 ${fixed(latency.baseline.p50, 2)} -> ${fixed(latency.jotgate.p50, 2)} ms (Δ ${sign(latency.delta.p50)}), ` +
      `p99 ${fixed(latency.baseline.p99, 2)} -> ${fixed(latency.jotgate.p99, 2)} ms (Δ ${sign(latency.delta.p99)}${latency.delta.p99 === null ? '' : latency.delta.p99 <= 1 ? ', within 1 ms' : ', MORE than 1 ms'}), ` +
      `p99.9 ${fixed(latency.baseline.p999, 2)} -> ${fixed(latency.jotgate.p999, 2)} ms (Δ ${sign(latency.delta.p999)}); Δ: median over the pairs of jotgate - baseline` +
      (latency.behind > 0 ? `; WARNING ${latency.behind} window(s) served under 95% of the rate (the machine slowed down: queueing again)` : ''))
  }
  for (const r of revocation) {
    out.push(`revocation (POST /revocations, ${r.instances} instance${r.instances > 1 ? 's' : ''}, under HS256 load at ${r.loadRps.toFixed(0)} req/s): ` +
      `${r.calls - r.failed}/${r.calls} calls 201, p50 ${fixed(r.p50, 2)} ms, p99 ${fixed(r.p99, 2)} ms, max ${fixed(r.max, 2)} ms; ` +
      `token refused by every instance right after the call returned: ${r.refusedEverywhere}/${r.calls - r.failed}`)
  }
  return out
}
