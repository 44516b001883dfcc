/**
 * The built CLI as operators run it: `jotgate start` with a config file,
 * driven over HTTP and by signals (CONTRACT sections 1 and 7), and
 * `jotgate check` on a broken file.
 */
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { startUpstream } from '../helpers/upstream.js'
import { REDIS_URL, uniquePrefix } from '../helpers/redis.js'
import { AUDIENCE, ISSUER, KEYS, mint } from '../helpers/zoo.js'
import { CLI, assertBuilt, listening, parseLine, poll, spawnCli } from './cli-process.js'

assertBuilt()

const upstream = await startUpstream()
// Echo, after a second for /api/slow: a request still in flight at SIGTERM.
let slowAnsweredAt = 0
upstream.handle((req, res, body) => {
  const answer = () => {
    if (req.url?.startsWith('/api/slow') === true) slowAnsweredAt = Date.now()
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body }))
  }
  if (req.url?.startsWith('/api/slow') === true) setTimeout(answer, 1000)
  else answer()
})
const dir = mkdtempSync(join(tmpdir(), 'jotgate-e2e-'))
const file = join(dir, 'gateway.yaml')
t.teardown(async () => {
  await upstream.close()
  rmSync(dir, { recursive: true, force: true })
})

const prefix = uniquePrefix('e2e-cli')
function writeConfig (routes: Array<Record<string, unknown>>): void {
  writeFileSync(file, stringify({
    server: { host: '127.0.0.1', port: 0, shutdownGrace: '5s' },
    admin: { host: '127.0.0.1', port: 0 },
    store: { type: 'redis', url: REDIS_URL, keyPrefix: prefix },
    tokens: { issuer: ISSUER, audience: [AUDIENCE], keys: [KEYS.es256!.config, KEYS.hs256!.config] },
    routes
  }))
}
const API = { path: '/api', upstream: upstream.url }
writeConfig([API])

const gateway = spawnCli(process.execPath, [CLI, 'start', '--config', file])
t.teardown(() => gateway.signal('SIGKILL'))
const { port, adminPort } = await listening(gateway)
const base = `http://127.0.0.1:${port}`
const admin = `http://127.0.0.1:${adminPort}`
const bearer = { authorization: `Bearer ${mint()}` }

t.test('listening: both ports from the log line', async (t) => {
  t.type(port, 'number')
  t.type(adminPort, 'number')
  t.not(port, 0)
  t.equal((await fetch(`${admin}/healthz`)).status, 200)
  await poll(async () => (await fetch(`${admin}/readyz`)).status === 200, 3000, 'ready')
})

t.test('proxies a request with a token to the upstream', async (t) => {
  const res = await fetch(`${base}/api/hello?x=1`, { headers: bearer })
  t.equal(res.status, 200)
  const seen = await res.json() as { url: string, headers: Record<string, string> }
  t.equal(seen.url, '/api/hello?x=1')
  t.equal(seen.headers['x-user-id'], 'alice')
  t.equal(seen.headers['x-user-roles'], 'user')
  t.equal(seen.headers.authorization, undefined, 'the token is not forwarded')

  const refused = await fetch(`${base}/api/hello`)
  t.equal(refused.status, 401)
  t.match(await refused.json(), { code: 'JOTGATE_TOKEN_MISSING' })
  // One JSON log line per request.
  await gateway.waitFor((e) => e.msg === 'request' && e.status === 401 && e.code === 'JOTGATE_TOKEN_MISSING', 2000, 'request log line')
})

t.test('SIGHUP: a new route serves within 2 s', async (t) => {
  t.equal((await fetch(`${base}/new`)).status, 404)
  writeConfig([API, { path: '/new', upstream: upstream.url, auth: 'none' }])
  // Traffic on the old route all along: no request fails during a reload.
  let reloading = true
  const statuses: number[] = []
  const traffic = (async () => {
    while (reloading) statuses.push(await fetch(`${base}/api/during`, { headers: bearer }).then((r) => r.status, () => 0))
  })()
  gateway.signal('SIGHUP')
  const elapsed = await poll(async () => (await fetch(`${base}/new/x`)).status === 200, 2000, 'new route after SIGHUP')
  reloading = false
  await traffic
  t.ok(elapsed < 2000, `served after ${elapsed} ms`)
  t.ok(statuses.length > 0)
  t.same(statuses.filter((s) => s !== 200), [], `all ${statuses.length} requests during the reload succeeded`)
  await gateway.waitFor((e) => e.msg === 'config reloaded', 2000, 'reload log line')
})

t.test('SIGHUP with an invalid config: refused, the old one keeps serving', async (t) => {
  writeFileSync(file, stringify({ server: { port: 0 }, routes: [{ path: '/api', upstream: 'not-a-url' }], bogus: true }))
  gateway.signal('SIGHUP')
  const line = await gateway.waitFor((e) => /reload refused/.test(String(e.msg)), 2000, 'refused reload log line')
  t.equal(line.level, 50, 'logged as an error')
  t.same([...(line.problems as string[])].sort(), ['bogus: unknown key'])
  t.equal((await fetch(`${base}/new/x`)).status, 200, 'the route of the last good config still serves')
  t.equal((await fetch(`${base}/api/x`, { headers: bearer })).status, 200)
})

t.test('SIGTERM: in-flight requests finish, /readyz 503 within 1 s, exit 0', async (t) => {
  const slow = fetch(`${base}/api/slow`, { headers: bearer })
  await poll(async () => upstream.seen.some((r) => r.url === '/api/slow'), 2000, 'slow request at the upstream', 10)
  const signalled = Date.now()
  gateway.signal('SIGTERM')
  const notReady = await poll(async () => (await fetch(`${admin}/readyz`)).status === 503, 1000, '/readyz 503 after SIGTERM', 20)
  t.ok(notReady < 1000, `/readyz answered 503 after ${notReady} ms`)

  const res = await slow
  t.equal(res.status, 200, 'the in-flight request completed')
  t.equal((await res.json() as { url: string }).url, '/api/slow')
  t.ok(slowAnsweredAt > signalled, 'the upstream answered after the signal: it really was in flight')

  const exit = await gateway.exited
  t.same(exit, { code: 0, signal: null })
  t.ok(Date.now() - signalled < 5000, 'exited without waiting for the grace period')
  t.ok(gateway.lines.some((l) => parseLine(l)?.msg === 'stopped'))
})

t.test('every line written to stdout is a JSON log line', async (t) => {
  const lines = gateway.lines.filter((l) => l !== '')
  t.ok(lines.length > 5)
  t.same(lines.filter((l) => parseLine(l) === undefined), [], 'no non-JSON lines')
  t.ok(lines.every((l) => typeof parseLine(l)?.level === 'number' && typeof parseLine(l)?.msg === 'string'))
  const text = lines.join('\n')
  t.notMatch(text, bearer.authorization.slice(7), 'no token in the logs')
})

t.test('jotgate check on a broken config: the problem lines, exit 1', async (t) => {
  const schema = join(dir, 'schema.yaml')
  writeFileSync(schema, stringify({
    server: { port: 'eighty' },
    tokens: { issuer: ISSUER, keys: [KEYS.es256!.config] },
    routes: [{ path: '/', upstream: 'localhost:3000' }]
  }))
  const cross = join(dir, 'cross.yaml')
  writeFileSync(cross, stringify({
    tokens: { issuer: ISSUER, audience: ['api'], keys: [KEYS.es256!.config, KEYS.es256!.config] },
    routes: [{ path: '/', upstream: 'localhost:3000' }, { path: '/b', upstream: 'http://127.0.0.1:1', auth: 'none', require: { roles: ['x'] } }]
  }))
  // Spawned side by side: each start of node costs a second or more on a busy machine.
  const [first, second, missing] = [schema, cross, join(dir, 'missing.yaml')].map((f) => spawnCli(process.execPath, [CLI, 'check', '--config', f]))
  t.same(await first!.exited, { code: 1, signal: null })
  t.same(first!.lines.filter((l) => l !== ''), [], 'nothing on stdout')
  t.same(first!.stderr().trimEnd().split('\n'), ['server.port: must be a whole number'], 'schema problems stop before cross-field checks')

  t.same(await second!.exited, { code: 1, signal: null })
  t.same(second!.stderr().trimEnd().split('\n'), [
    'tokens.keys: only one key may have sign: true',
    'tokens.keys[1].kid: duplicate kid "es256"',
    'routes[0].upstream: must be an http(s) URL',
    'routes[1].auth: none cannot be combined with require or headers (there is no identity)'
  ])

  t.same(await missing!.exited, { code: 1, signal: null }, 'a missing file is a problem too')
  t.match(missing!.stderr(), /^cannot read config file .*missing\.yaml: ENOENT$/m)
})
