/**
 * Hot reload (CONTRACT sections 1 and 7): runGateway's reload(), what SIGHUP
 * calls, swaps config, keys and routes atomically. Under load no request
 * fails; in-flight requests finish on the config they started with; the
 * new config serves within 2 s; a refused config logs the same
 * `<key path>: <problem>` lines as `jotgate check` and the old one keeps
 * serving.
 */
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { loadConfigFile } from '../../src/config/load.js'
import { runGateway, type RunningGateway } from '../../src/server.js'
import { run as checkCli } from '../../src/cli/check.js'
import { captureLogger } from '../helpers/gateway.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'
import { AUDIENCE, ISSUER, KEYS, mint } from '../helpers/zoo.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const dir = mkdtempSync(join(tmpdir(), 'jotgate-reload-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

/** Echo, after `x-delay` ms when the request asks for it; says which upstream answered. */
function slowEcho (up: Upstream, name: string): void {
  up.handle((req: IncomingMessage, res: ServerResponse) => {
    const delay = Number(req.headers['x-delay'] ?? 0)
    const answer = () => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ upstream: name, url: req.url, user: req.headers['x-user-id'] }))
    }
    if (delay > 0) setTimeout(answer, delay)
    else answer()
  })
}

function writeConfig (file: string, routes: Record<string, unknown>[], tokens: Record<string, unknown> = {}): void {
  writeFileSync(file, JSON.stringify({
    server: { host: '127.0.0.1', port: 0 },
    store: { type: 'memory' },
    tokens: { issuer: ISSUER, audience: [AUDIENCE], keys: [KEYS.es256!.config], ...tokens },
    routes
  }, null, 2))
}

interface Started { running: RunningGateway, base: string, logs: string[] }

async function start (file: string): Promise<Started> {
  const logs: string[] = []
  const running = await runGateway(loadConfigFile(file), captureLogger(logs) as never, {})
  return { running, base: `http://127.0.0.1:${running.ports.server}`, logs }
}

interface Echo { status: number, upstream?: string, url?: string, user?: string, code?: string }

async function get (base: string, path: string, token: string, headers: Record<string, string> = {}): Promise<Echo> {
  const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}`, ...headers } })
  const body = await res.json() as Omit<Echo, 'status'>
  return { status: res.status, ...body }
}

/** The `problems` of the last "reload refused" log line, if any. */
function refusedProblems (logs: string[]): string[] | undefined {
  for (const line of [...logs].reverse()) {
    const entry = JSON.parse(line) as { problems?: string[], level?: number }
    if (Array.isArray(entry.problems)) return entry.problems
  }
  return undefined
}

async function checkOutput (file: string): Promise<{ code: number, lines: string[] }> {
  const lines: string[] = []
  const code = await checkCli(['--config', file], { stdout: () => {}, stderr: (l) => lines.push(l), env: {} })
  return { code, lines: lines.filter((l) => !l.startsWith('warning: ')) }
}

t.test('reloads under load: route changes take effect at once, zero failed requests', async (t) => {
  const up = await startUpstream()
  slowEcho(up, 'a')
  const file = join(dir, 'load.yaml')
  const version = (n: number) => [
    { path: '/v', upstream: up.url, rewrite: `/r${n}` },
    ...(n % 2 === 1 ? [{ path: '/extra', upstream: up.url, rewrite: '/added' }] : []),
    { path: '/', upstream: up.url }
  ]
  writeConfig(file, version(0))
  const { running, base, logs } = await start(file)
  t.teardown(async () => { await running.shutdown('test'); await up.close() })
  const token = mint()

  let stop = false
  let ok = 0
  const failures: string[] = []
  const client = async (i: number) => {
    while (!stop) {
      const path = i % 2 === 0 ? '/v/item' : '/extra/item'
      try {
        const res = await get(base, path, token)
        if (res.status >= 200 && res.status < 300) ok++
        else failures.push(`${path}: ${res.status} ${res.code ?? ''}`)
      } catch (err) {
        failures.push(`${path}: ${(err as Error).message} ${String((err as { cause?: { code?: string } }).cause?.code ?? '')}`)
      }
    }
  }
  const loadStart = Date.now()
  const clients = Array.from({ length: 20 }, (_, i) => client(i))

  const delays: number[] = []
  const reloadMs: number[] = []
  for (let n = 1; n <= 5; n++) {
    await sleep(300)
    writeConfig(file, version(n))
    const begin = Date.now()
    t.equal(await running.reload(), true, `reload ${n} accepted`)
    reloadMs.push(Date.now() - begin)
    // The new config serves within 2 s (CONTRACT section 7): reload()
    // resolves once it is swapped in, so the very next request sees it.
    const seen = await get(base, '/v/item', token)
    delays.push(Date.now() - begin)
    t.equal(seen.url, `/r${n}/item`, `reload ${n}: the first request after it gets the changed rewrite`)
    const extra = await get(base, '/extra/item', token)
    t.equal(extra.url, n % 2 === 1 ? '/added/item' : '/extra/item', `reload ${n}: /extra ${n % 2 === 1 ? 'added' : 'removed'}`)
  }
  await sleep(Math.max(200, 3000 - (Date.now() - loadStart)))
  stop = true
  await Promise.all(clients)

  t.same(failures, [], 'zero failed requests (no non-2xx, no socket error)')
  t.ok(ok > 100, `requests served during the reloads: ${ok}`)
  t.ok(reloadMs.every((d) => d < 2000), `each reload() swapped the config in within ${Math.max(...reloadMs)} ms`)
  t.equal(logs.filter((l) => l.includes('"config reloaded"')).length, 5, 'five reloads logged')
  t.comment(`${ok} requests, ${failures.length} failed, reload() ms: ${reloadMs.join(', ')}, reload-to-serving ms: ${delays.join(', ')}, load ran ${Date.now() - loadStart} ms`)
})

t.test('in-flight requests finish on the config they started with', async (t) => {
  const a = await startUpstream()
  const b = await startUpstream()
  slowEcho(a, 'a')
  slowEcho(b, 'b')
  const file = join(dir, 'inflight.yaml')
  writeConfig(file, [{ path: '/s', upstream: a.url, rewrite: '/old' }, { path: '/', upstream: a.url }])
  const { running, base } = await start(file)
  t.teardown(async () => { await running.shutdown('test'); await a.close(); await b.close() })
  const token = mint()

  const slow = Array.from({ length: 5 }, () => get(base, '/s/x', token, { 'x-delay': '500' }))
  const arrived = Date.now()
  while (a.seen.length < 5 && Date.now() - arrived < 2000) await sleep(10)
  t.equal(a.seen.length, 5, 'the slow requests reached the old upstream')

  writeConfig(file, [{ path: '/s', upstream: b.url, rewrite: '/new' }, { path: '/', upstream: b.url }])
  t.equal(await running.reload(), true, 'reload accepted while requests are in flight')
  const fresh = await get(base, '/s/x', token)
  t.same({ status: fresh.status, upstream: fresh.upstream, url: fresh.url }, { status: 200, upstream: 'b', url: '/new/x' }, 'a request after the reload uses the new route')

  const done = await Promise.all(slow)
  for (const [i, res] of done.entries()) {
    t.same({ status: res.status, upstream: res.upstream, url: res.url }, { status: 200, upstream: 'a', url: '/old/x' }, `in-flight request ${i} completed on the old route`)
  }
  t.equal(b.seen.length, 1, 'the new upstream saw only the request made after the reload')
})

t.test('a refused config logs the check lines and leaves the old config serving', async (t) => {
  const up = await startUpstream()
  slowEcho(up, 'a')
  const file = join(dir, 'refused.yaml')
  const good = [{ path: '/v', upstream: up.url, rewrite: '/kept' }]
  writeConfig(file, good)
  const { running, base, logs } = await start(file)
  t.teardown(async () => { await running.shutdown('test'); await up.close() })
  const token = mint()
  t.equal((await get(base, '/v/x', token)).url, '/kept/x')

  const bad: Array<[string, () => void]> = [
    ['an ftp upstream', () => writeConfig(file, [{ path: '/v', upstream: 'ftp://x', rewrite: '/new' }])],
    ['an unknown key', () => writeConfig(file, [{ path: '/v', upstream: up.url, rewrite: '/new', bogus: true }])],
    ['an unreadable key file', () => writeConfig(file, [{ path: '/v', upstream: up.url, rewrite: '/new' }], { keys: [{ kid: 'gone', alg: 'ES256', publicKeyFile: join(dir, 'missing.pub.pem') }] })],
    ['YAML that does not parse', () => writeFileSync(file, 'routes: [ { path: /v\n')]
  ]
  for (const [name, apply] of bad) {
    apply()
    const check = await checkOutput(file)
    t.equal(check.code, 1, `${name}: jotgate check refuses it`)
    const before = logs.length
    t.equal(await running.reload(), false, `${name}: reload refused`)
    const problems = refusedProblems(logs.slice(before))
    t.ok(problems !== undefined && problems.length > 0, `${name}: the problems are logged`)
    t.same(problems, check.lines, `${name}: the same <key path>: <problem> lines as jotgate check`)
    const res = await get(base, '/v/x', token)
    t.same({ status: res.status, url: res.url }, { status: 200, url: '/kept/x' }, `${name}: the old config keeps serving`)
  }

  writeConfig(file, [{ path: '/v', upstream: up.url, rewrite: '/fixed' }])
  t.equal(await running.reload(), true, 'a good config afterwards is accepted')
  t.equal((await get(base, '/v/x', token)).url, '/fixed/x', 'and serves')
})
