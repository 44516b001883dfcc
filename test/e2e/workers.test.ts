/**
 * server.workers: the primary forks that many gateways on the same ports,
 * relays SIGHUP to each and drains all of them on SIGTERM (exit 0).
 */
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { CLI, assertBuilt, poll, spawnCli } from './cli-process.js'
import { startUpstream } from '../helpers/upstream.js'
import { REDIS_URL, freePort, uniquePrefix } from '../helpers/redis.js'
import { AUDIENCE, ISSUER, KEYS, mint } from '../helpers/zoo.js'

assertBuilt()

t.test('two workers share the ports, reload on SIGHUP and drain on SIGTERM', async (t) => {
  const upstream = await startUpstream()
  const dir = mkdtempSync(join(tmpdir(), 'jotgate-workers-'))
  t.teardown(async () => { await upstream.close(); rmSync(dir, { recursive: true, force: true }) })
  const [port, adminPort] = [await freePort(), await freePort()]
  const file = join(dir, 'gateway.yaml')
  const write = (routes: unknown[]) => writeFileSync(file, stringify({
    server: { host: '127.0.0.1', port, workers: 2 },
    admin: { host: '127.0.0.1', port: adminPort },
    store: { type: 'redis', url: REDIS_URL, keyPrefix: uniquePrefix('workers') },
    tokens: { issuer: ISSUER, audience: [AUDIENCE], keys: [KEYS.es256!.config] },
    routes
  }))
  write([{ path: '/api', upstream: upstream.url }])
  const cli = spawnCli(process.execPath, [CLI, 'start', '--config', file])
  await poll(async () => cli.lines.filter((l) => l.includes('"jotgate listening"')).length === 2, 30_000, 'two workers listening')
  t.pass('both workers listen on the same ports')

  const token = mint()
  const answers = await Promise.all(Array.from({ length: 20 }, () => fetch(`http://127.0.0.1:${port}/api/x`, { headers: { authorization: `Bearer ${token}` } })))
  t.same(answers.map((r) => r.status), Array(20).fill(200), 'every request served')
  t.equal(upstream.seen.length, 20)

  write([{ path: '/api', upstream: upstream.url }, { path: '/open', upstream: upstream.url, auth: 'none' }])
  cli.signal('SIGHUP')
  await poll(async () => cli.lines.filter((l) => l.includes('"config reloaded"')).length === 2, 10_000, 'both workers reloaded')
  const open = await Promise.all(Array.from({ length: 6 }, () => fetch(`http://127.0.0.1:${port}/open`)))
  t.same(open.map((r) => r.status), Array(6).fill(200), 'the new route serves on every worker')

  cli.signal('SIGTERM')
  const exit = await cli.exited
  t.equal(exit.code, 0, 'the primary exits 0 once both workers drained')
  for (const line of cli.lines) t.doesNotThrow(() => JSON.parse(line), 'every stdout line is JSON')
})
