/**
 * store.replica: revocations answered from memory on every instance, and a
 * revocation call returns only after every live instance applied it.
 */
import t from 'tap'
import { startUpstream } from '../helpers/upstream.js'
import { replicaTrusted, startGateway, type TestGateway } from '../helpers/gateway.js'
import { startRedisServer, uniquePrefix } from '../helpers/redis.js'
import { mint, claims } from '../helpers/zoo.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function waitTrusted (gw: TestGateway): Promise<void> {
  if (!await replicaTrusted(gw)) throw new Error('replica never became trusted')
}

const get = (gw: TestGateway, token: string) => fetch(`${gw.url}/x`, { headers: { authorization: `Bearer ${token}` } })

t.test('a revocation on one instance is refused by the others as soon as the call returns', async (t) => {
  const redis = await startRedisServer()
  const up = await startUpstream()
  const store = { type: 'redis', url: redis.url, keyPrefix: uniquePrefix('replica'), replica: true }
  const config = { store, routes: [{ path: '/', upstream: up.url }] }
  const gws = await Promise.all([0, 1, 2].map(() => startGateway({ name: 'replica', config, admin: true })))
  t.teardown(async () => { await Promise.all(gws.map((g) => g.close())); await up.close(); await redis.stop() })
  await Promise.all(gws.map(waitTrusted))

  const latencies: number[] = []
  for (let i = 0; i < 20; i++) {
    const payload = claims()
    const token = mint({ payload })
    for (const gw of gws) t.equal((await get(gw, token)).status, 200, 'positive control on every instance')
    const before = up.seen.length
    const started = performance.now()
    const res = await fetch(`${gws[i % 3]!.adminUrl}/revocations`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jti: payload.jti, exp: payload.exp })
    })
    latencies.push(performance.now() - started)
    t.equal(res.status, 201)
    for (const gw of gws) {
      const after = await get(gw, token)
      t.equal(after.status, 401)
      t.equal((await after.json() as { code: string }).code, 'JOTGATE_TOKEN_REVOKED')
    }
    t.equal(up.seen.length, before, 'the upstream saw none of the revoked requests')
  }
  latencies.sort((a, b) => a - b)
  t.comment(`revocation call with 3 replica instances: p50 ${latencies[10]!.toFixed(1)} ms, max ${latencies[19]!.toFixed(1)} ms`)
})

t.test('replica answers locally; when its feed breaks it falls back to the store (and onError)', async (t) => {
  const redis = await startRedisServer()
  const up = await startUpstream()
  const store = { type: 'redis', url: redis.url, keyPrefix: uniquePrefix('replica'), replica: true, onError: 'deny' }
  const gw = await startGateway({ name: 'replica', config: { store, routes: [{ path: '/', upstream: up.url }] }, admin: true })
  t.teardown(async () => { await gw.close(); await up.close(); await redis.stop() })
  await waitTrusted(gw)
  const payload = claims()
  const revoked = mint({ payload })
  const good = mint()
  await fetch(`${gw.adminUrl}/revocations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jti: payload.jti, exp: payload.exp }) })
  await redis.stop()
  // Within the trust window the replica still answers, without Redis.
  t.equal((await get(gw, revoked)).status, 401, 'revoked token refused from the replica')
  t.equal((await get(gw, good)).status, 200, 'good token served from the replica while Redis is gone')
  await sleep(1300)
  const later = await get(gw, good)
  t.equal(later.status, 503, 'after the trust window: direct lookups, onError deny')
  t.equal((await later.json() as { code: string }).code, 'JOTGATE_STORE_UNAVAILABLE')
  t.equal((await get(gw, revoked)).status, 503, 'the revoked token is never accepted')
})

t.test('a dead instance delays revocations by at most its heartbeat lifetime', async (t) => {
  const redis = await startRedisServer()
  const up = await startUpstream()
  const store = { type: 'redis', url: redis.url, keyPrefix: uniquePrefix('replica'), replica: true }
  const config = { store, routes: [{ path: '/', upstream: up.url }] }
  const a = await startGateway({ name: 'replica', config, admin: true })
  const b = await startGateway({ name: 'replica', config })
  t.teardown(async () => { await a.close(); await up.close(); await redis.stop() })
  await waitTrusted(a)
  await waitTrusted(b)
  // b stops following without a goodbye: its last heartbeat stays until its TTL.
  await b.close()
  const payload = claims()
  const started = performance.now()
  const res = await fetch(`${a.adminUrl}/revocations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jti: payload.jti, exp: payload.exp }) })
  const ms = performance.now() - started
  t.equal(res.status, 201)
  t.ok(ms < 3000, `returned after ${ms.toFixed(0)} ms (bound: 2 s heartbeat + 1 s)`)
  t.equal((await get(a, mint({ payload }))).status, 401)
})
