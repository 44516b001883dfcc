/**
 * Sentinel reconnection in the states a failover catches connections in,
 * against real Sentinels and one that accepts connections and never
 * answers (a stopped or hung Sentinel): asked first, it keeps a connection
 * in 'connecting' (asking where the master is) for the Sentinel command
 * timeout, long enough to act on it at a known moment.
 *
 * A connection disconnected in that state is ended for good by ioredis;
 * the store's follower (what moves connections after a switch) must leave
 * it alone and look at it again once it is ready.
 */
import t from 'tap'
import { createServer, type Server, type Socket } from 'node:net'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { createFollower, createRedisStore } from '../../src/store/redis.js'
import type { GatewayConfig } from '../../src/config/schema.js'
import { uniquePrefix } from '../helpers/redis.js'
import { startSentinel, type HostPort, type SentinelTopology } from '../helpers/topologies.js'

let topo: SentinelTopology
let silent: Server
const sockets = new Set<Socket>()
let silentAddr: HostPort

t.before(async () => {
  topo = await startSentinel()
  silent = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.resume()
  })
  silent.listen(0, '127.0.0.1')
  await once(silent, 'listening')
  silentAddr = { host: '127.0.0.1', port: (silent.address() as { port: number }).port }
})

t.teardown(async () => {
  for (const s of sockets) s.destroy()
  silent.close()
  await topo.stop()
})

/** A client that asks the silent Sentinel first: 'connecting' for about 1.5 s from its creation. */
function slowClient (): Redis {
  const c = new Redis({
    sentinels: [silentAddr, ...topo.sentinels],
    name: topo.name,
    sentinelCommandTimeout: 1500,
    retryStrategy: () => 100,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false
  })
  c.on('error', () => {})
  return c
}

/** Resolves with the first of `events` that `c` emits, or 'timeout' (its 'error' events are not among them). */
function first (c: Redis, events: string[], ms: number): Promise<string> {
  return new Promise((resolve) => {
    const handlers = events.map((e) => [e, () => done(e)] as const)
    const timer = setTimeout(() => done('timeout'), ms)
    const done = (what: string) => {
      clearTimeout(timer)
      for (const [e, h] of handlers) c.off(e, h)
      resolve(what)
    }
    for (const [e, h] of handlers) c.once(e, h)
  })
}

async function master (): Promise<HostPort> {
  const addr = await topo.masterAddr()
  if (addr === undefined) throw new Error('no Sentinel named the master')
  return addr
}

t.test('why: ioredis ends a connection disconnected while it asks the Sentinels', async (t) => {
  const c = slowClient()
  t.teardown(() => c.disconnect())
  t.equal(c.status, 'connecting', 'asking the Sentinels')
  c.disconnect(true)
  t.equal(await first(c, ['end', 'ready'], 8000), 'end', 'it ended instead of reconnecting')
  await sleep(500)
  t.equal(c.status, 'end', 'and stays ended')
})

t.test('the follower leaves a connecting connection alone, and it comes up on the master', async (t) => {
  const c = slowClient()
  t.teardown(() => c.disconnect())
  const { track, follow } = createFollower()
  track(c)
  t.equal(c.status, 'connecting', 'asking the Sentinels')
  const ended = first(c, ['end'], 8000)
  follow(await master())
  t.equal(await first(c, ['ready', 'end'], 8000), 'ready', 'ready, not ended')
  t.equal(await c.ping(), 'PONG', 'and it answers')
  const at = c.stream as { remotePort?: number }
  t.equal(at.remotePort, (await master()).port, 'on the master the Sentinels name')
  c.disconnect()
  t.equal(await ended, 'end', 'ended only when closed')
})

t.test('a connection that was connecting when told to follow is moved once ready if it is elsewhere', async (t) => {
  const c = slowClient()
  t.teardown(() => c.disconnect())
  const { track, follow } = createFollower()
  track(c)
  let reconnects = 0
  c.on('reconnecting', () => { reconnects++ })
  // A master other than the one the Sentinels will name: as when the
  // answer it is waiting for predates a switch.
  const m = await master()
  follow({ host: m.host, port: topo.replicaPort === m.port ? topo.primaryPort : topo.replicaPort })
  t.equal(await first(c, ['ready', 'end'], 8000), 'ready', 'ready first')
  t.equal(await first(c, ['reconnecting', 'end'], 3000), 'reconnecting', 'then reconnected, being elsewhere than told')
  t.equal(await first(c, ['ready', 'end'], 8000), 'ready', 'and ready again')
  await sleep(300)
  t.equal(reconnects, 1, 'once: the check is made once per follow')
  t.equal(c.status, 'ready', 'still ready')
})

t.test('the store reaches the master past a Sentinel that never answers', async (t) => {
  const config = {
    type: 'redis',
    url: 'redis://127.0.0.1:1',
    sentinels: [silentAddr, ...topo.sentinels],
    name: topo.name,
    keyPrefix: uniquePrefix('sentinel-follow'),
    onError: 'deny',
    commandTimeout: '500ms',
    replica: false,
    tls: false
  } as unknown as GatewayConfig['store']
  const store = createRedisStore(config)
  t.teardown(() => store.close())
  const started = performance.now()
  await t.resolves(store.ready(10_000), 'ready within 10 s')
  const ms = performance.now() - started
  t.ok(ms >= 900, `after ${ms.toFixed(0)} ms: the silent Sentinel was asked first and given its second`)
  await store.revokeJti('follow-1', Date.now() / 1000 + 60)
  t.equal(await store.isRevoked({ jti: 'follow-1' }), true, 'a revocation written and read through the Sentinels')
})
