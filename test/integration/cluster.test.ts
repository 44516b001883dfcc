/**
 * Issue 9: the store on a real Redis Cluster (3 masters, redis-server
 * processes on free loopback ports). The whole token lifecycle runs against
 * it (login, proxied call, refresh, reuse detection, logout, logout-all,
 * rate limit), admin revocations of every kind, and `store.replica: true`
 * whose feed keys share the `{rvfeed}` hash tag. The keys really are spread
 * over the masters: the test counts them per node.
 */
import t from 'tap'
import { Cluster, Redis } from 'ioredis'
import { startCluster, type ClusterTopology } from '../helpers/topologies.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'
import { uniquePrefix } from '../helpers/redis.js'
import { mint, claims } from '../helpers/zoo.js'
import { replicaTrusted, type TestGateway } from '../helpers/gateway.js'
import { authGateway, call, login, refresh, decode, revokeAcross, topologyUsers, sleep, type Pair } from './auth-kit.js'

let cluster: ClusterTopology
let up: Upstream
let file: string
/** bcrypt cost 4 only: the rate-limit test makes many failed logins. */
let fastFile: string

t.before(async () => {
  cluster = await startCluster(3)
  up = await startUpstream()
  ;({ file, fastFile } = await topologyUsers())
})
t.teardown(async () => {
  await up?.close()
  await cluster?.stop()
})

const clusterStore = (keyPrefix: string, extra: Record<string, unknown> = {}) =>
  // store.url is ignored once `cluster` is set: point it at nothing to prove it.
  ({ type: 'redis', url: 'redis://127.0.0.1:1', cluster: cluster.nodes, keyPrefix, onError: 'deny', ...extra })

async function gatewayOn (store: Record<string, unknown>, rateLimit: Record<string, unknown> = { max: 1000 }, users = file): Promise<TestGateway> {
  return authGateway({
    name: 'cluster',
    admin: true,
    auth: { users: { file: users }, rateLimit },
    storeConfig: store,
    server: { trustProxy: true },
    routes: [{ path: '/', upstream: up.url }]
  })
}

const get = async (gw: TestGateway, token: string) => {
  const r = await fetch(`${gw.url}/orders/1`, { headers: { authorization: `Bearer ${token}` } })
  return { status: r.status, body: await r.json() as Record<string, unknown> }
}

const revoke = async (gw: TestGateway, body: Record<string, unknown>) => {
  const r = await fetch(`${gw.adminUrl!}/revocations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  await r.arrayBuffer()
  return r.status
}

/** Keys under `prefix` on each master, by port. */
async function keysPerNode (prefix: string): Promise<Map<number, string[]>> {
  const out = new Map<number, string[]>()
  for (const node of cluster.nodes) {
    const r = new Redis({ ...node, maxRetriesPerRequest: 1 })
    const keys: string[] = []
    let cursor = '0'
    do {
      const [c, batch] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      cursor = c
      keys.push(...batch)
    } while (cursor !== '0')
    r.disconnect()
    out.set(node.port, keys)
  }
  return out
}

t.test('the whole lifecycle on a 3-master Cluster', async (t) => {
  const prefix = uniquePrefix('cluster')
  const gw = await gatewayOn(clusterStore(prefix))
  t.teardown(() => gw.close())
  t.equal((await fetch(`${gw.adminUrl!}/readyz`)).status, 200, '/readyz 200 on Cluster')

  t.test('login -> upstream -> refresh -> reuse detection revokes the session', async (t) => {
    const first = await login(gw.url, 'alice', 'alice-pw')
    let seen = up.seen.length
    t.equal((await get(gw, first.access_token)).status, 200, 'proxied call with the access token')
    t.equal(up.seen.length, seen + 1)
    t.equal(up.seen.at(-1)!.headers['x-user-id'], 'alice')
    t.equal(up.seen.at(-1)!.headers['x-user-roles'], 'ops')

    const r1 = await refresh(gw.url, first.refresh_token)
    t.equal(r1.status, 200, 'refresh')
    const second = r1.body as unknown as Pair
    t.equal(decode(second.access_token).payload.sid, decode(first.access_token).payload.sid, 'same session')
    t.equal((await get(gw, second.access_token)).status, 200, 'the refreshed access token works')

    const replay = await refresh(gw.url, first.refresh_token)
    t.same([replay.status, replay.body?.code], [401, 'JOTGATE_REFRESH_INVALID'], 'the spent refresh token is refused')
    seen = up.seen.length
    for (const token of [second.access_token, first.access_token]) {
      t.same((await get(gw, token)).body.code, 'JOTGATE_TOKEN_REVOKED', 'reuse revoked every access token of the session')
    }
    t.equal(up.seen.length, seen, 'the upstream saw none of them')
    const after = await refresh(gw.url, second.refresh_token)
    t.same([after.status, after.body?.code], [401, 'JOTGATE_REFRESH_INVALID'], "the session's live refresh token died with it")
  })

  t.test('logout revokes the access token and its session; logout-all the subject', async (t) => {
    const pair = await login(gw.url, 'bob', 'bob-pw')
    const other = await login(gw.url, 'bob', 'bob-pw')
    t.equal((await get(gw, pair.access_token)).status, 200)
    const out = await call(gw.url, '/auth/logout', { refresh_token: pair.refresh_token }, { token: pair.access_token })
    t.equal(out.status, 204, 'logout')
    t.same((await get(gw, pair.access_token)).body.code, 'JOTGATE_TOKEN_REVOKED')
    t.same((await refresh(gw.url, pair.refresh_token)).body?.code, 'JOTGATE_REFRESH_INVALID')
    t.equal((await get(gw, other.access_token)).status, 200, 'another session lives on')

    const third = await login(gw.url, 'bob', 'bob-pw')
    const all = await call(gw.url, '/auth/logout-all', undefined, { token: third.access_token })
    t.equal(all.status, 204, 'logout-all')
    for (const p of [other, third]) {
      t.same((await get(gw, p.access_token)).body.code, 'JOTGATE_TOKEN_REVOKED', 'every access token of bob is refused')
      t.same((await refresh(gw.url, p.refresh_token)).body?.code, 'JOTGATE_REFRESH_INVALID', 'and every refresh token')
    }
    const fresh = await login(gw.url, 'bob', 'bob-pw')
    t.equal((await get(gw, fresh.access_token)).status, 200, 'a login after logout-all gets a working token')
  })

  t.test('admin revocations: jti, sid, sub', async (t) => {
    for (const kind of ['jti', 'sid', 'sub'] as const) {
      const payload = claims({ sub: `user-${kind}-${Math.random().toString(36).slice(2)}`, iat: Math.floor(Date.now() / 1000) - 5 })
      const token = mint({ payload })
      t.equal((await get(gw, token)).status, 200, `${kind}: positive control`)
      const body = kind === 'jti' ? { jti: payload.jti, exp: payload.exp } : { [kind]: payload[kind] }
      t.equal(await revoke(gw, body), 201, `${kind}: 201`)
      t.same((await get(gw, token)).body.code, 'JOTGATE_TOKEN_REVOKED', `${kind}: refused at once`)
    }
  })

  t.test('the keys really live on several masters; no key left without a TTL', async (t) => {
    const perNode = await keysPerNode(prefix)
    const counts = [...perNode.values()].map((k) => k.length)
    t.comment(`keys per master: ${[...perNode.entries()].map(([p, k]) => `${p}: ${k.length}`).join(', ')}`)
    t.ok(counts.filter((n) => n > 0).length >= 2, 'spread over at least two masters')
    const client = new Cluster(cluster.nodes)
    t.teardown(() => client.disconnect())
    for (const key of [...perNode.values()].flat()) {
      const ttl = await client.ttl(key)
      t.ok(ttl > 0, `${key.slice(prefix.length)} expires (${ttl} s)`)
    }
  })
})

t.test('login rate limit on Cluster: 429 with Retry-After, counted per username and per IP', async (t) => {
  const gw = await gatewayOn(clusterStore(uniquePrefix('cluster-rl')), { max: 3, window: '1m' }, fastFile)
  t.teardown(() => gw.close())
  const attempt = (ip: string, username: string, password: string) =>
    call(gw.url, '/auth/login', { username, password }, { headers: { 'x-forwarded-for': ip } })
  for (let i = 0; i < 3; i++) t.equal((await attempt(`10.0.0.${i + 1}`, 'alice', 'wrong')).status, 401, `attempt ${i + 1}: 401`)
  const limited = await attempt('10.0.0.9', 'alice', 'alice-pw')
  t.same([limited.status, limited.body?.code], [429, 'JOTGATE_RATE_LIMITED'], 'per username: the 4th attempt is 429 even with the right password')
  const retry = Number(limited.headers.get('retry-after'))
  t.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`)
  for (let i = 0; i < 3; i++) await attempt('10.9.9.9', `nobody-${i}`, 'x')
  const byIp = await attempt('10.9.9.9', 'bob', 'bob-pw')
  t.same([byIp.status, byIp.body?.code], [429, 'JOTGATE_RATE_LIMITED'], 'per IP: the 4th attempt is 429')
  t.equal((await attempt('10.1.1.1', 'bob', 'bob-pw')).status, 200, 'another IP and username still log in')
})

t.test('store.replica on Cluster: a revocation through A is refused by B as soon as it returns', async (t) => {
  const prefix = uniquePrefix('cluster-replica')
  const store = clusterStore(prefix, { replica: true })
  const a = await gatewayOn(store)
  const b = await gatewayOn(store)
  t.teardown(async () => { await a.close(); await b.close() })
  for (const gw of [a, b]) t.ok(await replicaTrusted(gw), 'replica trusted (feed read and heartbeat work on Cluster)')

  await revokeAcross(t, a, b, 10)

  // Token endpoints and session revocation through the replica on Cluster.
  const pair = await login(a.url, 'bob', 'bob-pw')
  t.equal((await get(b, pair.access_token)).status, 200)
  t.equal((await call(a.url, '/auth/logout', undefined, { token: pair.access_token })).status, 204, 'logout on A')
  t.same((await get(b, pair.access_token)).body.code, 'JOTGATE_TOKEN_REVOKED', 'refused by B')

  // The feed keys: one slot, thanks to the {rvfeed} hash tag.
  const client = new Cluster(cluster.nodes)
  t.teardown(() => client.disconnect())
  const feedKeys = [...(await keysPerNode(prefix)).values()].flat().filter((k) => k.includes('{rvfeed}'))
  t.ok(feedKeys.some((k) => k.endsWith(':stream')) && feedKeys.some((k) => k.includes(':ack:')), `feed keys present (${feedKeys.length})`)
  const slots = new Set(await Promise.all(feedKeys.map((k) => client.cluster('KEYSLOT', k))))
  t.equal(slots.size, 1, 'every feed key in one slot')
})

t.test('a master dies and comes back: 503 fast, recovery without restart, no revoked token accepted', async (t) => {
  const prefix = uniquePrefix('cluster-outage')
  const gw = await gatewayOn(clusterStore(prefix))
  t.teardown(() => gw.close())
  const client = new Cluster(cluster.nodes)
  t.teardown(() => client.disconnect())

  const goodPayload = claims()
  const good = mint({ payload: goodPayload })
  const revokedPayload = claims()
  const revoked = mint({ payload: revokedPayload })
  t.equal((await get(gw, good)).status, 200, 'positive control')
  t.equal(await revoke(gw, { jti: revokedPayload.jti, exp: revokedPayload.exp }), 201)
  t.same((await get(gw, revoked)).body.code, 'JOTGATE_TOKEN_REVOKED')

  // The master that holds the good token's jti key.
  const slot = await client.cluster('KEYSLOT', `${prefix}rv:jti:${goodPayload.jti as string}`) as number
  const ranges = await client.cluster('SLOTS')
  const port = ranges.find(([from, to]) => slot >= from && slot <= to)![2]![1]
  const victim = cluster.nodes.findIndex((n) => n.port === port)
  t.ok(victim >= 0, `the good token's jti key lives on the master at port ${port}`)

  interface Sample { token: 'good' | 'revoked', startedAt: number, ms: number, status: number, code: unknown }
  const samples: Sample[] = []
  let probing = true
  const probe = async (token: 'good' | 'revoked') => {
    const startedAt = performance.now()
    const r = await get(gw, token === 'good' ? good : revoked).catch(() => ({ status: 0, body: {} as Record<string, unknown> }))
    samples.push({ token, startedAt, ms: performance.now() - startedAt, status: r.status, code: r.body.code })
  }
  const prober = (async () => { while (probing) { await Promise.all([probe('good'), probe('revoked')]); await sleep(20) } })()
  await sleep(300)

  await cluster.killNode(victim)
  const killedAt = performance.now()
  await sleep(3000) // past cluster-node-timeout (2 s): the cluster itself says CLUSTERDOWN
  await cluster.restartNode(victim)
  const restartedAt = performance.now()
  let recoveredAt: number | undefined
  while (performance.now() - restartedAt < 10_000) {
    const last = samples.filter((s) => s.token === 'good' && s.startedAt > restartedAt).at(-1)
    if (last?.status === 200) { recoveredAt = last.startedAt + last.ms; break }
    await sleep(50)
  }
  await sleep(300)
  probing = false
  await prober

  const goodOnes = samples.filter((s) => s.token === 'good')
  const first503 = goodOnes.find((s) => s.startedAt >= killedAt && s.status === 503)
  t.comment(`cluster: first 503 ${first503 === undefined ? 'never' : (first503.startedAt + first503.ms - killedAt).toFixed(0)} ms after the master died; ` +
    `normal service ${recoveredAt === undefined ? 'never' : (recoveredAt - restartedAt).toFixed(0)} ms after it was back (${(restartedAt - killedAt).toFixed(0)} ms after the kill); ` +
    `${samples.length} requests, slowest ${Math.max(...samples.map((s) => s.ms)).toFixed(0)} ms`)
  t.ok(first503 !== undefined && first503.startedAt + first503.ms - killedAt < 2000, '503 within 2 s of the master going away')
  t.ok(recoveredAt !== undefined && recoveredAt - restartedAt < 10_000, 'normal service within 10 s of it coming back, without a restart')
  t.ok(samples.every((s) => s.ms < 2000), 'no request took 2 s or more')
  t.ok(goodOnes.every((s) => s.status === 200 || (s.status === 503 && s.code === 'JOTGATE_STORE_UNAVAILABLE')), 'the good token only ever got 200 or 503')
  const revokedOnes = samples.filter((s) => s.token === 'revoked')
  t.equal(revokedOnes.filter((s) => s.status === 200).length, 0, 'the revoked token never got a 200')
  t.ok(revokedOnes.every((s) => s.status === 401 || s.status === 503), 'only 401 or 503')

  // Every slot answers again: fresh tokens (keys all over the slots) and a new revocation.
  for (let i = 0; i < 10; i++) t.equal((await get(gw, mint())).status, 200, 'a fresh token passes')
  const payload = claims()
  t.equal(await revoke(gw, { jti: payload.jti, exp: payload.exp }), 201, 'revocations work again')
  t.same((await get(gw, mint({ payload }))).body.code, 'JOTGATE_TOKEN_REVOKED')
  t.same((await get(gw, revoked)).body.code, 'JOTGATE_TOKEN_REVOKED', 'refused as revoked again (its key was not on the dead master, or came back with it)')
})
