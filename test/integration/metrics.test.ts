/**
 * CONTRACT sections 5 and 7: `GET /metrics` on the admin listener, in the
 * Prometheus text format. Series are prefixed `jotgate_`, the status label
 * holds the exact code, and route labels are configured route paths: a
 * request path made of random segments must never become a label value
 * (unbounded cardinality would take the Prometheus server down).
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import bcrypt from 'bcryptjs'
import { createMemoryStore } from '../../src/store/memory.js'
import { StoreUnavailableError, type Store } from '../../src/store/types.js'
import { startUpstream } from '../helpers/upstream.js'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { trackPrefixes } from '../helpers/redis.js'
import { claims, mint, now, rawRequest, rawText } from '../helpers/zoo.js'

interface Sample { name: string, labels: Record<string, string>, value: number }

/** Parses the sample lines of the text format (version 0.0.4). */
function parseSamples (text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match === null) throw new Error(`not a sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const [, k, v] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!
    samples.push({ name: match[1]!, labels, value: Number(match[3]) })
  }
  return samples
}

/** The value of the one sample of `name` holding `labels` (undefined when none). */
function value (samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`)
  return found[0]?.value
}

/** `# TYPE name kind` lines: every metric family the registry exposes. */
function families (text: string): Map<string, string> {
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]))
}

async function get (url: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await fetch(url, { headers })
  await res.arrayBuffer()
  return res.status
}

async function scrape (gw: TestGateway): Promise<{ contentType: string | null, text: string, samples: Sample[] }> {
  const res = await fetch(`${gw.adminUrl!}/metrics`)
  const text = await res.text()
  t.equal(res.status, 200, 'GET /metrics answers 200')
  return { contentType: res.headers.get('content-type'), text, samples: parseSamples(text) }
}

const prefixes = trackPrefixes(t)

t.test('requests, refusals, latencies, store calls, logins and revocations are exposed with bounded labels', async (t) => {
  const up = await startUpstream()
  const dir = mkdtempSync(join(tmpdir(), 'jotgate-metrics-'))
  const users = join(dir, 'users.json')
  // bcrypt at its lowest cost: a login here is about metrics, not hashing.
  writeFileSync(users, JSON.stringify({ users: [{ username: 'alice', password: await bcrypt.hash('correct horse', 4) }] }))
  const gw = await startGateway({
    name: 'metrics',
    admin: true,
    config: {
      auth: { users: { file: users } },
      routes: [
        { path: '/api', upstream: up.url },
        { path: '/open', upstream: up.url, auth: 'none' }
      ]
    }
  })
  prefixes.push(gw.gateway.generation().config.store.keyPrefix)
  t.teardown(async () => { await gw.close(); await up.close() })

  const auth = { authorization: `Bearer ${mint()}` }
  const random = () => randomBytes(6).toString('hex')
  const rawSegments: string[] = []

  // 200s through the real upstream: 3 on /api (one with random segments), 1 on /open.
  t.equal(await get(`${gw.url}/api/items`, auth), 200)
  t.equal(await get(`${gw.url}/api`, auth), 200)
  const segs = [random(), random(), random()]
  rawSegments.push(...segs)
  t.equal(await get(`${gw.url}/api/x/${segs.join('/')}`, auth), 200)
  t.equal(await get(`${gw.url}/open/anything`), 200)
  // 401 without a token, twice (one with a random path).
  const r401 = random()
  rawSegments.push(r401)
  t.equal(await get(`${gw.url}/api/items`), 401)
  t.equal(await get(`${gw.url}/api/${r401}`), 401)
  // 404: no route matches.
  const r404 = random()
  rawSegments.push(r404)
  t.equal(await get(`${gw.url}/nowhere-${r404}/deeper`), 404)
  // 400: an encoded slash (CONTRACT step 1).
  const r400 = random()
  rawSegments.push(r400)
  t.equal(await get(`${gw.url}/api/${r400}%2Fetc`), 400)
  // 431: headers over server.maxHeaderBytes, refused by the HTTP parser.
  const big = await rawRequest(gw.url, rawText('/api/items', [['x-big', 'a'.repeat(20_000)]]))
  t.equal(big.status, 431)
  // Logins: one success, one failure.
  const login = (password: string) => fetch(`${gw.url}/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password })
  }).then(async (res) => { await res.arrayBuffer(); return res.status })
  t.equal(await login('correct horse'), 200)
  t.equal(await login('wrong horse'), 401)
  // A revocation written through the admin listener.
  const revoked = await fetch(`${gw.adminUrl!}/revocations`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jti: random(), exp: now() + 600 })
  })
  await revoked.arrayBuffer()
  t.equal(revoked.status, 201)

  const { contentType, text, samples } = await scrape(gw)
  t.match(contentType, /^text\/plain; version=0\.0\.4/, 'Prometheus text exposition format 0.0.4')

  const requests = (labels: Record<string, string>) => value(samples, 'jotgate_requests_total', labels)
  t.equal(requests({ route: '/api', method: 'GET', status: '200' }), 3, 'counted exactly, random segments under the route label')
  t.equal(requests({ route: '/open', method: 'GET', status: '200' }), 1)
  t.equal(requests({ route: '/api', method: 'GET', status: '401' }), 2, 'status label holds the exact code')
  t.equal(requests({ route: '/auth/login', method: 'POST', status: '200' }), 1)
  t.equal(requests({ route: '/auth/login', method: 'POST', status: '401' }), 1)
  for (const s of samples.filter((s) => s.name === 'jotgate_requests_total')) {
    t.match(s.labels.status, /^[1-5][0-9][0-9]$/, `status ${s.labels.status} is an exact code, not a class like 2xx`)
  }

  // No raw request path ever becomes a label value (or appears anywhere).
  for (const seg of rawSegments) t.notOk(text.includes(seg), `raw path segment ${seg} does not appear in /metrics`)
  const routeLabels = new Set(samples.filter((s) => s.labels.route !== undefined).map((s) => s.labels.route!))
  const allowed = new Set(['/api', '/open', '(none)', '/auth/login', '/auth/refresh', '/auth/logout', '/auth/logout-all', '/.well-known/jwks.json'])
  const foreign = [...routeLabels].filter((r) => !allowed.has(r))
  t.same(foreign, [], 'route labels are configured route paths or the gateway\'s own endpoints')

  t.equal(value(samples, 'jotgate_refusals_total', { code: 'JOTGATE_TOKEN_MISSING' }), 2, 'refusals by code')
  t.equal(value(samples, 'jotgate_refusals_total', { code: 'JOTGATE_ROUTE_NOT_FOUND' }), 1)
  t.equal(value(samples, 'jotgate_refusals_total', { code: 'JOTGATE_BAD_PATH' }), 1)
  t.equal(value(samples, 'jotgate_refusals_total', { code: 'JOTGATE_LOGIN_FAILED' }), 1)
  t.equal(value(samples, 'jotgate_refusals_total', { code: 'JOTGATE_HEADERS_TOO_LARGE' }), 1, 'refusals of the HTTP parser are counted too')

  // Histograms: the +Inf bucket counts every observation.
  t.equal(value(samples, 'jotgate_request_duration_seconds_bucket', { route: '/api', le: '+Inf' }), 5, 'whole-request latency by route')
  t.equal(value(samples, 'jotgate_request_duration_seconds_count', { route: '/api' }), 5)
  t.ok(value(samples, 'jotgate_request_duration_seconds_sum', { route: '/api' })! > 0)
  t.equal(value(samples, 'jotgate_upstream_duration_seconds_bucket', { route: '/api', le: '+Inf' }), 3, 'upstream latency: only forwarded requests')
  t.equal(value(samples, 'jotgate_upstream_duration_seconds_bucket', { route: '/open', le: '+Inf' }), 1)
  t.ok(value(samples, 'jotgate_store_duration_seconds_bucket', { op: 'is_revoked', le: '+Inf' })! >= 3, 'store latency of revocation checks')
  t.ok(value(samples, 'jotgate_store_duration_seconds_bucket', { op: 'rate_limit', le: '+Inf' })! >= 2, 'store latency of login rate limits')
  const buckets = samples.filter((s) => s.name === 'jotgate_request_duration_seconds_bucket' && s.labels.route === '/api')
  t.ok(buckets.length > 5, 'several latency buckets')
  t.ok(buckets.every((b, i) => i === 0 || b.value >= buckets[i - 1]!.value), 'buckets are cumulative')

  t.equal(value(samples, 'jotgate_logins_total', { outcome: 'success' }), 1, 'logins by outcome')
  t.equal(value(samples, 'jotgate_logins_total', { outcome: 'failed' }), 1)
  t.equal(value(samples, 'jotgate_revocations_total', { kind: 'jti' }), 1, 'revocations written, by kind')
  // One token on three /api requests: verified once, then the cache.
  t.equal(value(samples, 'jotgate_token_verifications_total', { result: 'miss' }), 1, 'token verifications: the first use a miss')
  t.equal(value(samples, 'jotgate_token_verifications_total', { result: 'hit' }), 2, 'the next two cache hits')
  t.ok(value(samples, 'jotgate_process_cpu_seconds_total')! > 0, 'process metrics, prefixed')
  t.ok(value(samples, 'jotgate_process_resident_memory_bytes')! > 0)

  // Naming: jotgate_ prefix, lower snake case, counters end in _total,
  // histograms of time in _seconds.
  const kinds = families(text)
  t.ok(kinds.size > 10, 'metric families listed with # TYPE')
  for (const [name, kind] of kinds) {
    t.match(name, /^jotgate_[a-z0-9_]+$/, `${name} is prefixed and snake case`)
    if (kind === 'counter') t.match(name, /_total$/, `counter ${name} ends in _total`)
    else t.notMatch(name, /_total$/, `${kind} ${name} does not end in _total`)
  }
  for (const s of samples) t.ok(s.name.startsWith('jotgate_'), `sample ${s.name} is prefixed`)
  for (const name of ['jotgate_request_duration_seconds', 'jotgate_upstream_duration_seconds', 'jotgate_store_duration_seconds']) {
    t.equal(kinds.get(name), 'histogram', `${name} is a histogram`)
  }

  // A scrape hands over only what was counted since the last one.
  t.equal(await get(`${gw.url}/api/items`, auth), 200)
  t.equal(await get(`${gw.url}/api/items`, { authorization: `Bearer ${mint()}` }), 200)
  const next = (await scrape(gw)).samples
  t.equal(value(next, 'jotgate_token_verifications_total', { result: 'hit' }), 3, 'one more hit, counted once')
  t.equal(value(next, 'jotgate_token_verifications_total', { result: 'miss' }), 2, 'one more miss, a new token')
})

t.test('store errors and JWKS fetch outcomes are counted', async (t) => {
  const up = await startUpstream()
  // A store that answers everything but revocation checks: those fail as
  // an unreachable Redis would, so the request is refused with 503.
  const inner = createMemoryStore()
  // revokedLocally says "ask the backend": the memory store would answer at once.
  const failing: Store = { ...inner, isRevoked: async () => { throw new StoreUnavailableError('down for the test') }, revokedLocally: () => undefined }
  const gw = await startGateway({
    name: 'metrics-errors',
    admin: true,
    store: failing,
    config: {
      routes: [{ path: '/api', upstream: up.url }],
      tokens: {
        issuer: 'https://jotgate.test',
        audience: ['api'],
        keys: [],
        // Nothing listens on port 9 (discard): the fetch fails at start.
        trustedIssuers: [{ issuer: 'https://idp.example/', jwksUri: 'http://127.0.0.1:9/jwks.json', fetchTimeout: '1s' }]
      }
    }
  })
  t.teardown(async () => { await gw.close(); await up.close() })
  // Tokens of the unreachable issuer cannot be checked; the point here is
  // only the counters.
  const status = await get(`${gw.url}/api`, { authorization: `Bearer ${mint({ payload: claims({ iss: 'https://idp.example/' }) })}` })
  t.ok(status === 401 || status === 503, `refused (${status})`)

  const gw2 = await startGateway({ name: 'metrics-errors2', admin: true, store: failing, config: { routes: [{ path: '/api', upstream: up.url }] } })
  t.teardown(() => gw2.close())
  t.equal(await get(`${gw2.url}/api`, { authorization: `Bearer ${mint()}` }), 503, 'store down, onError: deny')

  const one = await scrape(gw)
  t.ok(value(one.samples, 'jotgate_jwks_fetches_total', { issuer: 'https://idp.example/', outcome: 'error' })! >= 1, 'JWKS fetches by outcome')
  const two = await scrape(gw2)
  t.equal(value(two.samples, 'jotgate_store_errors_total', { op: 'is_revoked' }), 1, 'store errors by operation')
  t.equal(value(two.samples, 'jotgate_refusals_total', { code: 'JOTGATE_STORE_UNAVAILABLE' }), 1)
  t.equal(value(two.samples, 'jotgate_requests_total', { route: '/api', method: 'GET', status: '503' }), 1)
  t.equal(up.seen.length, 0, 'nothing reached the upstream')
})
