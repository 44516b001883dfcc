/**
 * The Redis store against a real server: revocation lookups, the sub
 * cut-off that only moves forward, expiry, atomic refresh spending, rate
 * limit windows, and failing fast (then recovering) when Redis goes away.
 */
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import { createRedisStore } from '../../src/store/redis.js'
import { StoreUnavailableError, type RefreshRecord, type Store } from '../../src/store/types.js'
import type { GatewayConfig } from '../../src/config/schema.js'
import { REDIS_URL, redisClient, startRedisServer, uniquePrefix } from '../helpers/redis.js'

const storeConfig = (url: string, keyPrefix: string): GatewayConfig['store'] =>
  ({ type: 'redis', url, keyPrefix, onError: 'deny', commandTimeout: '500ms', replica: false, tls: false })

const nowSec = (): number => Math.floor(Date.now() / 1000)

const record = (over: Partial<RefreshRecord> = {}): RefreshRecord =>
  ({ sub: 'alice', sid: 's1', claims: { roles: ['user'] }, issuedAt: nowSec(), expiresAt: nowSec() + 600, ...over })

async function scanKeys (client: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = next
    keys.push(...batch)
  } while (cursor !== '0')
  return keys
}

const client = redisClient()
const prefixes: string[] = []
function newStore (name: string, url = REDIS_URL): { store: Store, prefix: string } {
  const prefix = uniquePrefix(`redis-store-${name}`)
  prefixes.push(prefix)
  const store = createRedisStore(storeConfig(url, prefix))
  t.teardown(() => store.close())
  return { store, prefix }
}

t.teardown(async () => {
  for (const prefix of prefixes) {
    const keys = await scanKeys(client, prefix)
    if (keys.length > 0) await client.del(...keys)
  }
  client.disconnect()
})

t.test('isRevoked by jti, sid and sub cut-off', async (t) => {
  const { store } = newStore('lookup')
  await store.ready(3000)
  t.equal(store.kind, 'redis')
  t.equal(store.isHealthy(), true)
  const t0 = nowSec()
  t.equal(await store.isRevoked({ jti: 'j1', sid: 's1', sub: 'alice', iat: t0 }), false, 'nothing revoked yet')
  t.equal(await store.isRevoked({}), false, 'no identifiers: nothing to look up')

  await store.revokeJti('j1', t0 + 60)
  t.equal(await store.isRevoked({ jti: 'j1' }), true, 'jti revoked')
  await store.revokeJti('far', 1e300)
  t.equal(await store.isRevoked({ jti: 'far' }), true, 'an absurd exp is capped, not an error')
  t.equal(await store.isRevoked({ jti: 'j2', sid: 's9', sub: 'bob', iat: t0 }), false, 'another jti is not')

  await store.revokeSid('s1', 60)
  t.equal(await store.isRevoked({ jti: 'j3', sid: 's1' }), true, 'sid revoked')
  t.equal(await store.isRevoked({ jti: 'j3', sid: 's2' }), false, 'another sid is not')

  await store.revokeSub('alice', t0, 60)
  t.equal(await store.subRevokedAt('alice'), t0)
  t.equal(await store.subRevokedAt('nobody'), undefined)
  t.equal(await store.isRevoked({ sub: 'alice', iat: t0 - 100 }), true, 'iat before the cut-off')
  t.equal(await store.isRevoked({ sub: 'alice', iat: t0 }), true, 'iat at the cut-off')
  t.equal(await store.isRevoked({ sub: 'alice', iat: t0 + 0.5 }), true, 'a fractional iat in the cut-off second')
  t.equal(await store.isRevoked({ sub: 'alice', iat: t0 + 1 }), false, 'iat after the cut-off')
  t.equal(await store.isRevoked({ sub: 'alice' }), true, 'no iat under a revoked sub: fail closed')
  t.equal(await store.isRevoked({ sub: 'bob' }), false, 'another sub is not')
  t.equal(await store.isRevoked({ jti: 'j4', sid: 's4', sub: 'alice', iat: t0 + 1 }), false, 'all three looked up, none covers')
  t.equal(await store.isRevoked({ jti: 'j1', sid: 's4', sub: 'alice', iat: t0 + 1 }), true, 'any one covering is enough')
})

t.test('the store\'s connection is named jotgate in CLIENT LIST', async (t) => {
  const { store } = newStore('named')
  await store.ready(5000)
  const list = await client.client('LIST') as string
  t.match(list, /\bname=jotgate\b/, 'an operator can tell the gateway\'s connections apart')
})

t.test('revokeSub never moves the cut-off back and never shrinks the TTL', async (t) => {
  const { store, prefix } = newStore('sub')
  await store.ready(3000)
  const key = `${prefix}rv:sub:carol`
  const t0 = nowSec()
  await store.revokeSub('carol', t0, 1000)
  t.equal(await store.subRevokedAt('carol'), t0)
  const ttl1 = await client.ttl(key)
  t.ok(ttl1 > 990 && ttl1 <= 1000, `ttl set (${ttl1})`)

  await store.revokeSub('carol', t0 - 50, 5000)
  t.equal(await store.subRevokedAt('carol'), t0, 'an earlier cut-off does not replace a later one')
  t.ok(await client.ttl(key) > 4990, 'a longer ttl extends the entry')

  await store.revokeSub('carol', t0 + 10, 10)
  t.equal(await store.subRevokedAt('carol'), t0 + 10, 'a later cut-off replaces an earlier one')
  const ttl3 = await client.ttl(key)
  t.ok(ttl3 > 4980, `a shorter ttl does not shrink the entry, even when the cut-off moves (${ttl3})`)

  await store.revokeSub('carol', t0 + 5, 10)
  t.equal(await store.subRevokedAt('carol'), t0 + 10)
  t.ok(await client.ttl(key) > 4980, 'still not shrunk')
})

t.test('entries expire: nothing is left after their lifetime', async (t) => {
  const { store, prefix } = newStore('expiry')
  await store.ready(3000)
  const t0 = nowSec()
  await store.revokeJti('gone-soon', t0 + 2)
  await store.revokeJti('already-expired', t0 - 100) // kept briefly, never forever
  await store.revokeSid('sid-soon', 2)
  await store.revokeSub('sub-soon', t0, 2)
  await store.putRefresh('hash-soon', record({ expiresAt: t0 + 2 }))
  await store.hit('login:ip', 1500)
  const before = await scanKeys(client, prefix)
  t.equal(before.length, 6, 'six keys written')
  t.equal(await store.isRevoked({ jti: 'gone-soon' }), true)
  const jtiTtl = await client.ttl(`${prefix}rv:jti:gone-soon`)
  t.ok(jtiTtl > 0 && jtiTtl <= 2, `jti entry lives until exp (${jtiTtl} s)`)
  await sleep(3100)
  t.same(await scanKeys(client, prefix), [], 'every entry expired')
  t.equal(await store.isRevoked({ jti: 'gone-soon', sid: 'sid-soon', sub: 'sub-soon', iat: t0 }), false)
  t.same(await store.spendRefresh('hash-soon'), { status: 'unknown' })
})

t.test('spendRefresh: ok once, then reused; unknown when missing', async (t) => {
  const { store } = newStore('spend')
  await store.ready(3000)
  const rec = record({ client: 'web' })
  await store.putRefresh('h1', rec)
  t.same(await store.spendRefresh('h1'), { status: 'ok', record: rec })
  t.same(await store.spendRefresh('h1'), { status: 'reused', record: rec })
  t.same(await store.spendRefresh('h1'), { status: 'reused', record: rec }, 'stays reused')
  t.same(await store.spendRefresh('nope'), { status: 'unknown' })
})

t.test('concurrent spends from two instances: exactly one ok', async (t) => {
  const a = newStore('race')
  const b = createRedisStore(storeConfig(REDIS_URL, a.prefix))
  t.teardown(() => b.close())
  await Promise.all([a.store.ready(3000), b.ready(3000)])
  for (let round = 0; round < 5; round++) {
    const hash = `race-${round}`
    await a.store.putRefresh(hash, record())
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a.store : b).spendRefresh(hash)))
    const statuses = results.map((r) => r.status)
    t.equal(statuses.filter((s) => s === 'ok').length, 1, `round ${round}: one ok`)
    t.equal(statuses.filter((s) => s === 'reused').length, 19, `round ${round}: the others reused`)
  }
})

t.test('hit counts within a window and resets after it', async (t) => {
  const { store } = newStore('hit')
  await store.ready(3000)
  const first = await store.hit('ip:1', 600)
  t.equal(first.count, 1)
  t.ok(first.resetMs > 0 && first.resetMs <= 600)
  t.equal((await store.hit('ip:1', 600)).count, 2)
  const third = await store.hit('ip:1', 600)
  t.equal(third.count, 3)
  t.ok(third.resetMs > 0 && third.resetMs <= first.resetMs, 'the window does not restart on each hit')
  t.equal((await store.hit('ip:2', 600)).count, 1, 'keys are counted apart')
  await sleep(700)
  const after = await store.hit('ip:1', 600)
  t.equal(after.count, 1, 'a new window starts from one')
})

t.test('Redis stopped: every method rejects fast; restarted: recovers without a new store', async (t) => {
  const redis = await startRedisServer()
  t.teardown(() => redis.stop())
  const { store } = newStore('outage', redis.url)
  await store.ready(3000)
  await store.putRefresh('before', record())
  t.equal(await store.isRevoked({ jti: 'x' }), false, 'positive control: up')

  await redis.stop()
  const calls: Record<string, () => Promise<unknown>> = {
    isRevoked: () => store.isRevoked({ jti: 'x', sid: 'y', sub: 'z', iat: 1 }),
    revokeJti: () => store.revokeJti('x', nowSec() + 60),
    revokeSid: () => store.revokeSid('y', 60),
    revokeSub: () => store.revokeSub('z', nowSec(), 60),
    subRevokedAt: () => store.subRevokedAt('z'),
    putRefresh: () => store.putRefresh('h', record()),
    spendRefresh: () => store.spendRefresh('before'),
    hit: () => store.hit('k', 1000),
    ready: () => store.ready(300)
  }
  for (const [name, call] of Object.entries(calls)) {
    const started = performance.now()
    const err = await call().then(() => undefined, (e: unknown) => e)
    const ms = performance.now() - started
    t.ok(err instanceof StoreUnavailableError, `${name} rejects with StoreUnavailableError`)
    t.equal((err as { code?: string } | undefined)?.code, 'JOTGATE_STORE_UNAVAILABLE', `${name} code`)
    t.ok(ms < 1000, `${name} rejected in ${ms.toFixed(0)} ms`)
  }
  t.equal(store.isHealthy(), false, 'unhealthy while down')

  await redis.restart()
  const restarted = performance.now()
  while (!store.isHealthy() && performance.now() - restarted < 10_000) await sleep(50)
  const recoveredMs = performance.now() - restarted
  t.comment(`store healthy again ${recoveredMs.toFixed(0)} ms after Redis came back`)
  t.ok(store.isHealthy(), 'healthy again within 10 s')
  // A fresh server: the Lua scripts must be loaded again (NOSCRIPT handled).
  await store.revokeSub('z', 100, 60)
  t.equal(await store.isRevoked({ sub: 'z', iat: 100 }), true, 'commands work after recovery')
  await store.putRefresh('after', record())
  t.equal((await store.spendRefresh('after')).status, 'ok', 'scripts work after recovery')
  t.equal((await store.hit('k', 1000)).count, 1)
})

t.test('Redis hung (SIGSTOP): commands time out, the store reports unhealthy, then recovers', async (t) => {
  const redis = await startRedisServer()
  const pid = redis.proc.pid!
  let stopped = false
  t.teardown(async () => {
    if (stopped) process.kill(pid, 'SIGCONT')
    await redis.stop()
  })
  const { store } = newStore('hang', redis.url)
  await store.ready(3000)
  t.equal(await store.isRevoked({ jti: 'x' }), false, 'positive control: up')

  process.kill(pid, 'SIGSTOP')
  stopped = true
  for (const [name, call] of Object.entries({
    isRevoked: () => store.isRevoked({ jti: 'x', sid: 'y', sub: 'z', iat: 1 }),
    revokeJti: () => store.revokeJti('x', nowSec() + 60),
    spendRefresh: () => store.spendRefresh('h')
  })) {
    const started = performance.now()
    const err = await call().then(() => undefined, (e: unknown) => e)
    const ms = performance.now() - started
    t.ok(err instanceof StoreUnavailableError, `${name} rejects with StoreUnavailableError`)
    t.ok(ms < 1500, `${name} rejected in ${ms.toFixed(0)} ms (commandTimeout 500 ms)`)
  }
  t.equal(store.isHealthy(), false, 'unhealthy while commands time out')

  process.kill(pid, 'SIGCONT')
  stopped = false
  const resumed = performance.now()
  while (!store.isHealthy() && performance.now() - resumed < 10_000) await sleep(50)
  t.comment(`healthy again ${(performance.now() - resumed).toFixed(0)} ms after Redis resumed`)
  t.ok(store.isHealthy(), 'healthy again, without traffic')
  t.equal(await store.isRevoked({ jti: 'fresh' }), false, 'commands work')
  // A write that timed out may still have been applied once Redis resumed:
  // the caller was told it failed, which errs on the safe side.
})
