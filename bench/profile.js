/**
 * Summary of a V8 .cpuprofile (node --cpu-prof) taken while jotgate is
 * under load: self time by function, self time by area (fastify, our
 * pipeline, crypto, ioredis, undici, logging...), and inclusive time of
 * jotgate's own functions (the steps of a request), each also per request.
 */

/**
 * Areas, first match wins, tested on the script URL (file:///.../x.js or
 * node:internal/...) and function name. Native code (the HMAC itself, a
 * socket write) counts as self time of the JS function that called it.
 * @type {[string, (url: string, fn: string) => boolean][]}
 */
const AREAS = [
  ['idle', (_u, fn) => fn === '(idle)'],
  ['garbage collector', (_u, fn) => fn === '(garbage collector)'],
  ['(program): V8/native, unattributed', (_u, fn) => fn === '(program)' || fn === '(root)'],
  ['jotgate pipeline (dist/pipeline/*)', (u) => u.includes('/dist/pipeline/')],
  ['jotgate other (dist/*)', (u) => u.includes('/dist/')],
  ['request ids (crypto.randomUUID)', (u) => u.startsWith('node:internal/crypto/random')],
  ['fast-jwt + crypto', (u) => pkg(u) === 'fast-jwt' || u.startsWith('node:internal/crypto') || u === 'node:crypto'],
  ['ioredis', (u) => ['ioredis', 'redis-parser', 'denque', 'standard-as-callback', 'cluster-key-slot', 'redis-errors', '@ioredis/commands'].includes(pkg(u) ?? '')],
  ['undici / reply-from / http-proxy', (u) => ['undici', '@fastify/reply-from', '@fastify/http-proxy', 'fast-querystring', 'end-of-stream', 'pump'].includes(pkg(u) ?? '')],
  ['logging (pino)', (u) => ['pino', 'sonic-boom', 'fast-redact', '@pinojs/redact', 'quick-format-unescaped', 'safe-stable-stringify', 'atomic-sleep', 'pino-std-serializers', 'thread-stream', 'on-exit-leak-free'].includes(pkg(u) ?? '')],
  ['metrics (prom-client)', (u) => ['prom-client', 'tdigest', 'bintrees'].includes(pkg(u) ?? '')],
  ['fastify (routing, hooks, reply)', (u) => ['fastify', 'find-my-way', 'avvio', 'fast-json-stringify', '@fastify/error', 'fast-content-type-parse', 'light-my-request', 'abstract-logging', 'fast-decode-uri-component', 'safe-regex2', 'ret', 'rfdc', 'toad-cache', 'process-warning', '@fastify/fast-json-stringify-compiler', '@fastify/ajv-compiler', 'secure-json-parse', 'fastify-plugin', 'proxy-addr', '@fastify/proxy-addr', '@fastify/forwarded', '@fastify/cors', 'mnemonist', 'vary'].includes(pkg(u) ?? '')],
  ['JSON (builtin)', (u, fn) => u === '' && /^(JSON\.)?(parse|stringify)$/.test(fn)],
  ['native, no JS frame (socket writes, builtins)', (u) => u === ''],
  ['node http/net/streams core', (u) => u.startsWith('node:')],
  ['other node_modules', (u) => pkg(u) !== undefined],
  ['other', () => true]
]

/** Areas whose time is charged to the nearest caller of another area in the "attributed" view. */
const PASS_THROUGH = new Set(['JSON (builtin)', 'native, no JS frame (socket writes, builtins)', 'node http/net/streams core', 'other'])

/** The package a script belongs to (the innermost node_modules entry). @param {string} url */
function pkg (url) {
  const i = url.lastIndexOf('/node_modules/')
  if (i === -1) return undefined
  const rest = url.slice(i + 14).split('/')
  return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]
}

/** A short, stable label for a script URL. @param {string} url */
function shortUrl (url) {
  if (url === '') return ''
  const i = url.lastIndexOf('/node_modules/')
  if (i !== -1) return url.slice(i + 14)
  const d = url.indexOf('/dist/')
  if (d !== -1) return url.slice(d + 1)
  return url.replace(/^file:\/\//, '')
}

/**
 * @typedef {{ id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }} ProfileNode
 * @typedef {{ nodes: ProfileNode[], startTime: number, endTime: number, samples: number[], timeDeltas: number[] }} CpuProfile
 */

/**
 * @param {CpuProfile} profile
 * @param {{ requests: number, window?: { start: number, end: number }, mainThreadCpuUs?: number, processCpuUs?: number }} options
 *   requests: requests served in the window; window: monotonic µs bounds
 *   (process.hrtime, the same clock as V8's profile timestamps on Linux);
 *   mainThreadCpuUs: the main thread's CPU time in the window (/proc), to
 *   turn sampled wall time into CPU time on a machine where the process
 *   waits for a core (a sample then stands for time it did not run)
 */
export function summarizeProfile (profile, { requests, window, mainThreadCpuUs, processCpuUs }) {
  /** @type {Map<number, ProfileNode>} */
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  /** @type {Map<number, number>} */
  const parent = new Map()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)

  // Self time per node, from the samples inside the window.
  /** @type {Map<number, number>} */
  const self = new Map()
  let t = profile.startTime
  let inWindow = 0
  let total = 0
  const useWindow = window !== undefined && window.start < profile.endTime && window.end > profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0
    t += dt
    total += dt
    if (useWindow && (t < /** @type {{ start: number }} */ (window).start || t > /** @type {{ end: number }} */ (window).end)) continue
    const id = /** @type {number} */ (profile.samples[i])
    self.set(id, (self.get(id) ?? 0) + dt)
    inWindow += dt
  }

  const label = (/** @type {ProfileNode} */ n) => {
    const { functionName, url, lineNumber } = n.callFrame
    const where = shortUrl(url)
    return `${functionName || '(anonymous)'}${where === '' ? '' : ` ${where}:${lineNumber + 1}`}`
  }
  const areaOf = (/** @type {ProfileNode} */ n) => /** @type {[string, unknown]} */ (AREAS.find(([, test]) => test(n.callFrame.url, n.callFrame.functionName)))[0]

  /** @type {Map<string, number>} */
  const selfByFn = new Map()
  /** @type {Map<string, number>} */
  const byArea = new Map()
  /** @type {Map<string, number>} */
  const attributed = new Map()
  // Inclusive time of every function of ours: each sample counts once per
  // distinct function on its stack (recursion is not counted twice).
  /** @type {Map<string, number>} */
  const inclusive = new Map()
  for (const [id, us] of self) {
    const n = /** @type {ProfileNode} */ (byId.get(id))
    selfByFn.set(label(n), (selfByFn.get(label(n)) ?? 0) + us)
    const area = areaOf(n)
    byArea.set(area, (byArea.get(area) ?? 0) + us)
    let charged = area
    if (PASS_THROUGH.has(area)) {
      charged = 'node core, no library caller (HTTP parser, socket events)'
      for (let cur = parent.get(id); cur !== undefined; cur = parent.get(cur)) {
        const a = areaOf(/** @type {ProfileNode} */ (byId.get(cur)))
        if (!PASS_THROUGH.has(a) && !a.startsWith('(program)')) { charged = a; break }
      }
    }
    attributed.set(charged, (attributed.get(charged) ?? 0) + us)
    const seen = new Set()
    for (let cur = /** @type {number | undefined} */ (id); cur !== undefined; cur = parent.get(cur)) {
      const node = /** @type {ProfileNode} */ (byId.get(cur))
      if (!node.callFrame.url.includes('/dist/') && !INCLUSIVE_LIBS.some((re) => re.test(label(node)))) continue
      const l = label(node)
      if (seen.has(l)) continue
      seen.add(l)
      inclusive.set(l, (inclusive.get(l) ?? 0) + us)
    }
  }

  const idle = byArea.get('idle') ?? 0
  const busy = inWindow - idle
  // Sampled busy time -> CPU time of the main thread.
  const scale = mainThreadCpuUs !== undefined && busy > 0 ? mainThreadCpuUs / busy : 1
  const perReq = (/** @type {number} */ us) => requests > 0 ? round(us * scale / requests, 2) : null
  const share = (/** @type {number} */ us) => busy > 0 ? round(100 * us / busy, 1) : null
  const rows = (/** @type {Map<string, number>} */ m, /** @type {number} */ top) => [...m]
    .sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([name, us]) => ({ name, ms: round(us / 1000, 1), pctOfBusy: share(us), usPerRequest: perReq(us) }))
  return {
    windowMs: round(inWindow / 1000, 1),
    profiledMs: round(total / 1000, 1),
    busyMs: round(busy / 1000, 1),
    requests,
    mainThreadCpuUsPerRequest: mainThreadCpuUs === undefined || requests === 0 ? null : round(mainThreadCpuUs / requests, 2),
    processCpuUsPerRequest: processCpuUs === undefined || requests === 0 ? null : round(processCpuUs / requests, 2),
    sampledToCpuScale: round(scale, 3),
    note: 'main thread only, sampled; busy = window minus (idle); µs/req = share of busy samples x main-thread CPU time (/proc) / requests. ' +
      'Self time goes to the innermost JS function (native crypto/socket work included); "attributed" charges node core and native time to the nearest library or jotgate caller.',
    areas: rows(new Map([...byArea].filter(([k]) => k !== 'idle')), AREAS.length),
    attributedAreas: rows(new Map([...attributed].filter(([k]) => k !== 'idle')), AREAS.length + 1),
    topSelf: rows(new Map([...selfByFn].filter(([k]) => k !== '(idle)')), 25),
    jotgateInclusive: rows(new Map([...inclusive].filter(([k]) => k.includes('dist/'))), 30),
    libraryInclusive: rows(new Map([...inclusive].filter(([k]) => !k.includes('dist/'))), 20)
  }
}

/** Library entry points whose inclusive time says what a step costs. */
const INCLUSIVE_LIBS = [
  /^from .*@fastify\/reply-from\/index\.js/, // reply.from: the proxied request
  /^request .*undici\/lib\/api\/api-request\.js/,
  /^LOG .*pino\/lib\/tools\.js/, // log.info
  /^write .*pino\/lib\/proto\.js/,
  /^(inc|observe) .*prom-client\/lib\/(counter|histogram)\.js/,
  /^(mget|sendCommand) .*ioredis\//,
  /^(verify|digest|update|createHmac|timingSafeEqual|hmacDigest) .*(node:internal\/crypto|fast-jwt)/,
  /^(hookRunner|onSendHook|onRequestHook|hookIterator|next|handleRequest|runPreParsing|wrapThenable|send|onSendEnd) .*fastify\/lib\//,
  /^(lookup|find) .*find-my-way\//,
  /^(parserOnHeadersComplete|parserOnIncomingClient|writeHead|end|_writeRaw|_send|write) node:_http_/,
  /^randomUUID node:internal\/crypto\/random\.js/
]

/** @param {number} x @param {number} digits */
function round (x, digits) {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

/**
 * Per area (node core and native time charged to their callers), µs per
 * request in jotgate and in the baseline proxy, and the difference.
 * @param {ReturnType<typeof summarizeProfile>} jot
 * @param {ReturnType<typeof summarizeProfile>} base
 */
export function compareProfiles (jot, base) {
  const names = new Set([...jot.attributedAreas, ...base.attributedAreas].map((r) => r.name))
  const get = (/** @type {ReturnType<typeof summarizeProfile>} */ s, /** @type {string} */ name) => s.attributedAreas.find((r) => r.name === name)?.usPerRequest ?? 0
  const rows = [...names].map((name) => {
    const j = get(jot, name)
    const b = get(base, name)
    return { name, jotgateUsPerRequest: j, baselineUsPerRequest: b, deltaUsPerRequest: round(j - b, 2) }
  }).sort((x, y) => y.deltaUsPerRequest - x.deltaUsPerRequest)
  return {
    mainThreadCpuUsPerRequest: { jotgate: jot.mainThreadCpuUsPerRequest, baseline: base.mainThreadCpuUsPerRequest },
    processCpuUsPerRequest: { jotgate: jot.processCpuUsPerRequest, baseline: base.processCpuUsPerRequest },
    areas: rows
  }
}

/**
 * The summary as text lines for the terminal.
 * @param {{ jotgate: ReturnType<typeof summarizeProfile>, baseline: ReturnType<typeof summarizeProfile>, comparison: ReturnType<typeof compareProfiles> }} p
 */
export function formatProfile ({ jotgate: s, baseline, comparison }) {
  const out = []
  out.push(`CPU profiles (--cpu-prof, HS256, one token repeated, ${s.windowMs} ms window each): ` +
    `jotgate ${s.requests} requests, main thread ${s.mainThreadCpuUsPerRequest} µs/req, whole process ${s.processCpuUsPerRequest} µs/req; ` +
    `baseline ${baseline.requests} requests, main thread ${baseline.mainThreadCpuUsPerRequest} µs/req, whole process ${baseline.processCpuUsPerRequest} µs/req`)
  out.push('', 'Main-thread µs/req by area (node core and native time charged to the caller), jotgate vs baseline:')
  out.push(`  ${'jotgate'.padStart(8)} ${'baseline'.padStart(9)} ${'Δ'.padStart(8)}  area`)
  for (const r of comparison.areas) {
    out.push(`  ${String(r.jotgateUsPerRequest).padStart(8)} ${String(r.baselineUsPerRequest).padStart(9)} ${((r.deltaUsPerRequest >= 0 ? '+' : '') + r.deltaUsPerRequest).padStart(8)}  ${r.name}`)
  }
  /** @param {string} title @param {{ name: string, ms: number, pctOfBusy: number | null, usPerRequest: number | null }[]} rows */
  const table = (title, rows) => {
    out.push('', title)
    for (const r of rows) out.push(`  ${String(r.pctOfBusy ?? '').padStart(5)}%  ${String(r.usPerRequest ?? '').padStart(7)} µs/req  ${r.name}`)
  }
  table('jotgate, self time by area (share of busy samples, µs/req of main-thread CPU):', s.areas)
  table('jotgate, top 25 functions by self time:', s.topSelf)
  table('jotgate functions, inclusive (the steps of a request):', s.jotgateInclusive)
  table('jotgate, library entry points, inclusive:', s.libraryInclusive)
  return out
}
