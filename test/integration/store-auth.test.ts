/**
 * Issue 9, protected topologies: `store.password` (the data nodes' ACL
 * password) and `store.sentinelPassword` (the Sentinels' own) against a
 * real Sentinel set-up and a real Cluster whose redis-server processes ask
 * for them (requirepass, Sentinel auth-pass and requirepass). With the
 * right passwords the token lifecycle and revocations work, replica
 * included; with a wrong one the gateway is not ready and refuses with 503,
 * the upstream untouched.
 */
import t from 'tap'
import { startCluster, startSentinel, type ClusterTopology, type SentinelTopology } from '../helpers/topologies.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'
import { uniquePrefix } from '../helpers/redis.js'
import type { TestGateway } from '../helpers/gateway.js'
import type { TapTest } from '../security/kit.js'
import { authGateway, usersFile, call, login, refresh, decode, type Pair } from './auth-kit.js'

const DATA_PW = 'data-pw-4f1c'
const SENTINEL_PW = 'sentinel-pw-9b2e'

let sentinel: SentinelTopology | undefined
let cluster: ClusterTopology | undefined
let up: Upstream
let file: string

t.before(async () => {
  up = await startUpstream()
  file = await usersFile([{ username: 'alice', password: 'alice-pw', hash: '2b' }])
  ;[sentinel, cluster] = await Promise.all([
    startSentinel({ password: DATA_PW, sentinelPassword: SENTINEL_PW }),
    startCluster(3, { password: DATA_PW })
  ])
})
t.teardown(async () => {
  await up?.close()
  await sentinel?.stop()
  await cluster?.stop()
})

async function gatewayOn (store: Record<string, unknown>): Promise<TestGateway> {
  return authGateway({
    name: 'store-auth',
    admin: true,
    auth: { users: { file }, rateLimit: { max: 1000 } },
    storeConfig: { type: 'redis', keyPrefix: uniquePrefix('store-auth'), onError: 'deny', commandTimeout: '500ms', ...store },
    routes: [{ path: '/', upstream: up.url }]
  })
}

const get = async (gw: TestGateway, token: string) => {
  const r = await fetch(`${gw.url}/orders/1`, { headers: { authorization: `Bearer ${token}` } })
  return { status: r.status, body: await r.json() as Record<string, unknown> }
}

/** Login, a proxied call, refresh, an admin revocation and logout: every kind of store call. */
async function lifecycle (t: TapTest, gw: TestGateway): Promise<void> {
  const pair = await login(gw.url, 'alice', 'alice-pw')
  t.equal((await get(gw, pair.access_token)).status, 200, 'a fresh token passes')
  const r = await refresh(gw.url, pair.refresh_token)
  t.equal(r.status, 200, 'refresh')
  const next = r.body as unknown as Pair
  const { jti, exp } = decode(next.access_token).payload as { jti: string, exp: number }
  const revoked = await fetch(`${gw.adminUrl!}/revocations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jti, exp }) })
  t.equal(revoked.status, 201, 'admin revocation written')
  const seen = up.seen.length
  const refused = await get(gw, next.access_token)
  t.equal(refused.body.code, 'JOTGATE_TOKEN_REVOKED', 'the revoked token is refused')
  t.equal(up.seen.length, seen, 'and never reached the upstream')
  const other = await login(gw.url, 'alice', 'alice-pw')
  t.equal((await call(gw.url, '/auth/logout', undefined, { token: other.access_token })).status, 204, 'logout')
  t.equal((await get(gw, other.access_token)).body.code, 'JOTGATE_TOKEN_REVOKED', 'logged out')
}

/** A gateway whose store cannot authenticate: not ready, 503 on proxied routes, nothing forwarded. */
async function refusesWhenLockedOut (t: TapTest, gw: TestGateway): Promise<void> {
  const ready = await fetch(`${gw.adminUrl!}/readyz`)
  t.equal(ready.status, 503, 'not ready')
  const seen = up.seen.length
  const pair = await call(gw.url, '/auth/login', { username: 'alice', password: 'alice-pw' })
  t.equal(pair.status, 503, 'login: 503')
  const { mint } = await import('../helpers/zoo.js')
  const res = await get(gw, mint())
  t.equal(res.status, 503, 'proxied route: 503')
  t.equal(res.body.code, 'JOTGATE_STORE_UNAVAILABLE')
  t.equal(up.seen.length, seen, 'the upstream saw nothing')
}

t.test('Sentinel with passwords on the data nodes and on the Sentinels', async (t) => {
  const topology = sentinel!
  const store = { sentinels: topology.sentinels, name: topology.name, password: DATA_PW, sentinelPassword: SENTINEL_PW }
  for (const replica of [false, true]) {
    const gw = await gatewayOn({ ...store, replica })
    t.teardown(() => gw.close())
    t.equal((await fetch(`${gw.adminUrl!}/readyz`)).status, 200, `replica ${replica}: ready`)
    await t.test(`replica ${replica}: the token lifecycle`, (t) => lifecycle(t, gw))
  }
  for (const [label, wrong] of [['wrong data password', { password: 'nope' }], ['wrong Sentinel password', { sentinelPassword: 'nope' }]] as const) {
    const gw = await gatewayOn({ ...store, ...wrong })
    t.teardown(() => gw.close())
    await t.test(label, (t) => refusesWhenLockedOut(t, gw))
  }
})

t.test('Cluster with a password on every node', async (t) => {
  const store = { cluster: cluster!.nodes, password: DATA_PW }
  for (const replica of [false, true]) {
    const gw = await gatewayOn({ ...store, replica })
    t.teardown(() => gw.close())
    t.equal((await fetch(`${gw.adminUrl!}/readyz`)).status, 200, `replica ${replica}: ready`)
    await t.test(`replica ${replica}: the token lifecycle`, (t) => lifecycle(t, gw))
  }
  const gw = await gatewayOn({ ...store, password: 'nope' })
  t.teardown(() => gw.close())
  await t.test('wrong password', (t) => refusesWhenLockedOut(t, gw))
})
