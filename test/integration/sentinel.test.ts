/**
 * Issue 9: the store behind Redis Sentinel (a primary, one replica, three
 * Sentinels; redis-server processes on free loopback ports). The token
 * lifecycle passes through it; then the primary is killed by PID (SIGKILL)
 * while two gateway instances serve a good and a revoked token every ~20 ms:
 * with onError deny they answer 503 for a bounded window (measured and
 * printed) and recover by themselves, and no revoked token is accepted at
 * any moment. After the failover a revocation through one instance is
 * refused by the other at once.
 */
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { ask, info, startSentinel, type SentinelTopology } from '../helpers/topologies.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'
import { uniquePrefix } from '../helpers/redis.js'
import { mint, claims } from '../helpers/zoo.js'
import { replicaTrusted, type TestGateway } from '../helpers/gateway.js'
import { authGateway, call, login, refresh, revokeAcross, topologyUsers, type Pair } from './auth-kit.js'

let topo: SentinelTopology
/** For the tests that need a fresh primary + replica of their own (started alongside, to save time). */
let topoLag: SentinelTopology
let topoManual: SentinelTopology
let up: Upstream
let file: string
let fastFile: string

t.before(async () => {
  const started = await Promise.allSettled([startSentinel(), startSentinel(), startSentinel()])
  const failed = started.find((r) => r.status === 'rejected')
  if (failed !== undefined) {
    await Promise.all(started.map((r) => (r.status === 'fulfilled' ? r.value.stop() : undefined)))
    throw (failed as PromiseRejectedResult).reason
  }
  [topo, topoLag, topoManual] = started.map((r) => (r as PromiseFulfilledResult<SentinelTopology>).value) as [SentinelTopology, SentinelTopology, SentinelTopology]
  up = await startUpstream()
  ;({ file, fastFile } = await topologyUsers())
})
t.teardown(async () => {
  await up?.close()
  await Promise.all([topo?.stop(), topoLag?.stop(), topoManual?.stop()])
})

const sentinelStore = (keyPrefix: string) =>
  // store.url is ignored once `sentinels` is set: point it at nothing to prove it.
  ({ type: 'redis', url: 'redis://127.0.0.1:1', sentinels: topo.sentinels, name: topo.name, keyPrefix, onError: 'deny' })

async function gatewayOn (store: Record<string, unknown>, rateLimit: Record<string, unknown> = { max: 1000 }, users = file): Promise<TestGateway> {
  return authGateway({
    name: 'sentinel',
    admin: true,
    auth: { users: { file: users }, rateLimit },
    storeConfig: store,
    server: { trustProxy: true },
    routes: [{ path: '/public', upstream: up.url, auth: 'none' }, { path: '/', upstream: up.url }]
  })
}

interface Answer { status: number, code: string | undefined, startedAt: number, ms: number }

interface NodeConnections { port: number, role: string, names: Map<string, number> }

/**
 * Where the gateways' store connections are: per data node of `topology`,
 * its role and its clients by name (the store names its connections
 * `jotgate` and `jotgate-confirm`).
 */
async function connectionsAt (topology: SentinelTopology): Promise<NodeConnections[]> {
  const nodes: NodeConnections[] = []
  for (const port of [topology.primaryPort, topology.replicaPort]) {
    const role = (await info(port, 'replication')).get('role') ?? 'down'
    const list = await ask(port, 'CLIENT', 'LIST')
    const names = new Map<string, number>()
    for (const line of typeof list === 'string' ? list.split('\n') : []) {
      const name = /\bname=(jotgate\S*)/.exec(line)?.[1]
      if (name !== undefined) names.set(name, (names.get(name) ?? 0) + 1)
    }
    nodes.push({ port, role, names })
  }
  return nodes
}

/** Printed around a failover, so that a failure says which node each connection was on. */
function describe (nodes: NodeConnections[]): string {
  return nodes.map(({ port, role, names }) => `port ${port} (${role}): ${[...names].map(([n, c]) => `${n} x${c}`).join(', ') || 'no jotgate connection'}`).join('; ')
}

/** True when the node reporting itself master holds at least `count` of each gateway connection and the other node none. */
function allOnMaster (nodes: NodeConnections[], count: number): boolean {
  return nodes.every(({ role, names }) => role === 'master'
    ? (names.get('jotgate') ?? 0) >= count && (names.get('jotgate-confirm') ?? 0) >= count
    : names.size === 0)
}

async function send (gw: TestGateway, token: string): Promise<Answer> {
  const startedAt = performance.now()
  try {
    const r = await fetch(`${gw.url}/orders/1`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) })
    const body = await r.json() as { code?: string }
    return { status: r.status, code: body.code, startedAt, ms: performance.now() - startedAt }
  } catch {
    return { status: 0, code: undefined, startedAt, ms: performance.now() - startedAt }
  }
}

const revoke = async (gw: TestGateway, body: Record<string, unknown>) => {
  const r = await fetch(`${gw.adminUrl!}/revocations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(5000) })
  await r.arrayBuffer()
  return r.status
}

t.test('the whole lifecycle through Sentinel', async (t) => {
  const gw = await gatewayOn(sentinelStore(uniquePrefix('sentinel')))
  t.teardown(() => gw.close())
  t.equal((await fetch(`${gw.adminUrl!}/readyz`)).status, 200, '/readyz 200 through Sentinel')

  const first = await login(gw.url, 'alice', 'alice-pw')
  t.equal((await send(gw, first.access_token)).status, 200, 'login, then a proxied call')
  t.equal(up.seen.at(-1)!.headers['x-user-id'], 'alice')
  const r1 = await refresh(gw.url, first.refresh_token)
  t.equal(r1.status, 200, 'refresh')
  const second = r1.body as unknown as Pair
  t.equal((await send(gw, second.access_token)).status, 200, 'the refreshed token works')
  const replay = await refresh(gw.url, first.refresh_token)
  t.same([replay.status, replay.body?.code], [401, 'JOTGATE_REFRESH_INVALID'], 'reuse of the spent refresh token is refused')
  t.same((await send(gw, second.access_token)).code, 'JOTGATE_TOKEN_REVOKED', 'reuse revoked the session')
  t.same((await refresh(gw.url, second.refresh_token)).body?.code, 'JOTGATE_REFRESH_INVALID')

  const pair = await login(gw.url, 'bob', 'bob-pw')
  const other = await login(gw.url, 'bob', 'bob-pw')
  t.equal((await call(gw.url, '/auth/logout', { refresh_token: pair.refresh_token }, { token: pair.access_token })).status, 204, 'logout')
  t.same((await send(gw, pair.access_token)).code, 'JOTGATE_TOKEN_REVOKED')
  t.same((await refresh(gw.url, pair.refresh_token)).body?.code, 'JOTGATE_REFRESH_INVALID')
  t.equal((await send(gw, other.access_token)).status, 200, 'the other session lives on')
  t.equal((await call(gw.url, '/auth/logout-all', undefined, { token: other.access_token })).status, 204, 'logout-all')
  t.same((await send(gw, other.access_token)).code, 'JOTGATE_TOKEN_REVOKED')
  t.same((await refresh(gw.url, other.refresh_token)).body?.code, 'JOTGATE_REFRESH_INVALID')
  const fresh = await login(gw.url, 'bob', 'bob-pw')
  t.equal((await send(gw, fresh.access_token)).status, 200, 'a login after logout-all works')

  // Admin revocations; each waits for the replica's acknowledgement (WAIT): timed.
  const latencies: number[] = []
  let refused = 0
  for (let i = 0; i < 30; i++) {
    const payload = claims()
    const started = performance.now()
    t.equal(await revoke(gw, { jti: payload.jti, exp: payload.exp }), 201, 'admin revocation')
    latencies.push(performance.now() - started)
    if ((await send(gw, mint({ payload }))).code === 'JOTGATE_TOKEN_REVOKED') refused++
  }
  t.equal(refused, 30, 'every revoked token refused')
  latencies.sort((x, y) => x - y)
  t.comment(`revocation call through Sentinel (confirmed by the replica): p50 ${latencies[14]!.toFixed(1)} ms, max ${latencies[29]!.toFixed(1)} ms`)

  const rl = await gatewayOn(sentinelStore(uniquePrefix('sentinel-rl')), { max: 3, window: '1m' }, fastFile)
  t.teardown(() => rl.close())
  for (let i = 0; i < 3; i++) {
    const res = await call(rl.url, '/auth/login', { username: 'alice', password: 'wrong' }, { headers: { 'x-forwarded-for': `10.0.0.${i + 1}` } })
    t.equal(res.status, 401, `wrong password ${i + 1}: 401`)
  }
  const limited = await call(rl.url, '/auth/login', { username: 'alice', password: 'alice-pw' }, { headers: { 'x-forwarded-for': '10.0.0.9' } })
  t.same([limited.status, limited.body?.code], [429, 'JOTGATE_RATE_LIMITED'], 'rate limit: 429')
  t.match(limited.headers.get('retry-after'), /^\d+$/, 'with Retry-After')
})

t.test('store.replica through Sentinel: a revocation through A is refused by B as soon as it returns', async (t) => {
  const store = { ...sentinelStore(uniquePrefix('sentinel-replica')), replica: true }
  const a = await gatewayOn(store)
  const b = await gatewayOn(store)
  t.teardown(async () => { await a.close(); await b.close() })
  for (const gw of [a, b]) t.ok(await replicaTrusted(gw), 'replica trusted')
  await revokeAcross(t, a, b, 6)
})

t.test('failover: 503 for a bounded window, recovery without restart, no revoked token ever accepted', async (t) => {
  const prefix = uniquePrefix('sentinel-failover')
  const a = await gatewayOn(sentinelStore(prefix))
  const b = await gatewayOn(sentinelStore(prefix))
  t.teardown(async () => { await a.close(); await b.close() })
  const gws = { A: a, B: b }

  // Tokens revoked before the failover, by every kind of revocation.
  const good = mint()
  const byJti = claims()
  t.equal(await revoke(a, { jti: byJti.jti, exp: byJti.exp }), 201)
  const bySid = claims()
  t.equal(await revoke(b, { sid: bySid.sid }), 201)
  const session = await login(a.url, 'bob', 'bob-pw')
  t.equal((await call(b.url, '/auth/logout', undefined, { token: session.access_token })).status, 204, 'a logged-out session')
  const revokedTokens = { jti: mint({ payload: byJti }), sid: mint({ payload: bySid }), session: session.access_token }
  for (const gw of [a, b]) {
    t.equal((await send(gw, good)).status, 200, 'positive control')
    for (const tok of Object.values(revokedTokens)) t.same((await send(gw, tok)).code, 'JOTGATE_TOKEN_REVOKED', 'refused before the failover')
  }

  // Asynchronous replication: the replica must hold the revocations before the primary dies.
  await topo.waitInSync()

  interface Sample extends Answer { gw: 'A' | 'B', token: string }
  const samples: Sample[] = []
  let probing = true
  const prober = (async () => {
    while (probing) {
      const round: Promise<void>[] = []
      for (const [name, gw] of Object.entries(gws) as ['A' | 'B', TestGateway][]) {
        round.push(send(gw, good).then((r) => { samples.push({ ...r, gw: name, token: 'good' }) }))
        for (const [kind, tok] of Object.entries(revokedTokens)) round.push(send(gw, tok).then((r) => { samples.push({ ...r, gw: name, token: kind }) }))
      }
      await Promise.all(round)
      await sleep(20)
    }
  })()
  // Revocations keep coming through both instances all along the failover.
  interface Revocation { payload: Record<string, unknown>, status: number, startedAt: number, ms: number }
  const revocations: Revocation[] = []
  const revoker = (async () => {
    for (let i = 0; probing; i++) {
      const payload = claims()
      const startedAt = performance.now()
      const status = await revoke(i % 2 === 0 ? a : b, { jti: payload.jti, exp: payload.exp }).catch(() => 0)
      revocations.push({ payload, status, startedAt, ms: performance.now() - startedAt })
      await sleep(20)
    }
  })()
  await sleep(500)

  // The failover under test starts from both gateways on the master: a
  // Sentinel failover of its own just before (a loaded machine) is waited
  // out, and a gateway left on a replica fails here, by name.
  let before = await connectionsAt(topo)
  for (const deadline = performance.now() + 10_000; !allOnMaster(before, 2) && performance.now() < deadline;) {
    await sleep(100)
    before = await connectionsAt(topo)
  }
  t.comment(`before the kill: ${describe(before)}`)
  t.ok(allOnMaster(before, 2), 'before the kill, both gateways\' connections are on the master and none on the replica')
  const killed = await topo.killPrimary()
  const killedAt = performance.now()
  const oldPrimary = killed.port
  t.comment(`primary (port ${killed.port}, pid ${killed.pid}) killed with SIGKILL`)

  // Wait until the Sentinels switched and both instances serve the good token again.
  let switchedAt: number | undefined
  const recovered: Record<string, number | undefined> = {}
  while (performance.now() - killedAt < 30_000) {
    if (switchedAt === undefined) {
      const addr = await topo.masterAddr()
      if (addr !== undefined && addr.port !== oldPrimary) switchedAt = performance.now()
    }
    for (const name of ['A', 'B']) {
      if (recovered[name] !== undefined) continue
      const refused = samples.find((s) => s.gw === name && s.token === 'good' && s.startedAt >= killedAt && s.status !== 200)
      const back = refused === undefined ? undefined : samples.find((s) => s.gw === name && s.token === 'good' && s.startedAt > refused.startedAt && s.status === 200)
      if (back !== undefined) recovered[name] = back.startedAt + back.ms
    }
    if (recovered.A !== undefined && recovered.B !== undefined) break
    await sleep(50)
  }
  await sleep(500)
  probing = false
  await prober
  await revoker
  t.comment(`after the failover: ${describe(await connectionsAt(topo))}`)

  const windows: Record<string, { first503: number, window: number, recovery: number } | undefined> = {}
  for (const name of ['A', 'B'] as const) {
    const goodOnes = samples.filter((s) => s.gw === name && s.token === 'good').sort((x, y) => x.startedAt - y.startedAt)
    const first503 = goodOnes.find((s) => s.startedAt >= killedAt && s.status === 503)
    const back = first503 === undefined ? undefined : goodOnes.find((s) => s.startedAt > first503.startedAt && s.status === 200)
    if (first503 !== undefined && back !== undefined) {
      const at503 = first503.startedAt + first503.ms
      const at200 = back.startedAt + back.ms
      windows[name] = { first503: at503 - killedAt, window: at200 - at503, recovery: at200 - killedAt }
    }
    const w = windows[name]
    t.comment(`instance ${name}: first 503 ${w?.first503.toFixed(0)} ms after the kill; 503 window (first 503 to first 200) ${w?.window.toFixed(0)} ms; ` +
      `normal service ${w?.recovery.toFixed(0)} ms after the kill`)
  }
  t.comment(`Sentinels reported the new master ${switchedAt === undefined ? 'never' : `${(switchedAt - killedAt).toFixed(0)} ms`} after the kill; ` +
    `${samples.length} probe requests, slowest ${Math.max(...samples.map((s) => s.ms)).toFixed(0)} ms`)

  for (const name of ['A', 'B'] as const) {
    const w = windows[name]
    t.ok(w !== undefined, `instance ${name}: a 503 window, then 200 again, without a restart`)
    t.ok(w !== undefined && w.recovery < 30_000, `instance ${name}: normal service within 30 s of the kill (CONTRACT section 7)`)
    t.ok(w !== undefined && w.first503 < 2000, `instance ${name}: 503 within 2 s of the primary going away`)
  }
  const goodOnes = samples.filter((s) => s.token === 'good')
  t.ok(goodOnes.every((s) => s.status === 200 || (s.status === 503 && s.code === 'JOTGATE_STORE_UNAVAILABLE')), 'the good token only ever got 200 or 503 JOTGATE_STORE_UNAVAILABLE')
  const revokedOnes = samples.filter((s) => s.token !== 'good')
  t.ok(revokedOnes.length > 0, `${revokedOnes.length} requests with revoked tokens`)
  const accepted = revokedOnes.filter((s) => s.status === 200)
  t.equal(accepted.length, 0, 'no revoked token got a 200, at any moment')
  t.ok(revokedOnes.every((s) => s.status === 401 || s.status === 503), 'revoked tokens: only 401 or 503')
  t.ok(revokedOnes.filter((s) => s.startedAt > Math.max(recovered.A ?? Infinity, recovered.B ?? Infinity)).every((s) => s.code === 'JOTGATE_TOKEN_REVOKED'),
    'after recovery, every revoked token is refused as revoked again (the revocations survived the failover)')
  t.ok(samples.every((s) => s.status !== 0), 'no request hung or was dropped')

  // Every revocation call that returned 201, before, during or after the
  // failover, is refused by both instances now.
  const confirmed = revocations.filter((r) => r.status === 201)
  const during = confirmed.filter((r) => r.startedAt + r.ms > killedAt && r.startedAt < Math.max(recovered.A ?? 0, recovered.B ?? 0))
  t.comment(`revocation calls during the run: ${revocations.length}; 201: ${confirmed.length} (${during.length} of them answered between the kill and recovery); ` +
    `503: ${revocations.filter((r) => r.status === 503).length}; other: ${revocations.filter((r) => r.status !== 201 && r.status !== 503).length}`)
  const recoveredAt = Math.max(recovered.A ?? 0, recovered.B ?? 0)
  const firstConfirmedAfter = revocations.find((r) => r.startedAt > killedAt && r.status === 201)
  t.comment(`revocations: first 201 after the kill answered ${firstConfirmedAfter === undefined ? 'never' : (firstConfirmedAfter.startedAt + firstConfirmedAfter.ms - killedAt).toFixed(0)} ms after it; ` +
    `after recovery: ${revocations.filter((r) => r.startedAt > recoveredAt).map((r) => r.status).join(',')}`)
  t.ok(revocations.every((r) => r.status === 201 || r.status === 503), 'revocation calls answered 201 or 503, never hung')
  let lost = 0
  for (const r of confirmed) {
    for (const gw of [a, b]) {
      const res = await send(gw, mint({ payload: r.payload }))
      if (res.code !== 'JOTGATE_TOKEN_REVOKED') lost++
    }
  }
  t.equal(lost, 0, `every one of the ${confirmed.length} confirmed revocations is enforced by both instances after the failover`)

  // After the failover: revocations through one instance are refused by the other at once.
  for (const [from, to, fromName, toName] of [[a, b, 'A', 'B'], [b, a, 'B', 'A']] as const) {
    const payload = claims()
    const token = mint({ payload })
    t.equal((await send(to, token)).status, 200, 'positive control after the failover')
    t.equal(await revoke(from, { jti: payload.jti, exp: payload.exp }), 201, `revocation through ${fromName}`)
    t.same((await send(to, token)).code, 'JOTGATE_TOKEN_REVOKED', `refused by ${toName} as soon as the call returned`)
  }
  const pair = await login(b.url, 'alice', 'alice-pw')
  t.equal((await send(a, pair.access_token)).status, 200, 'login works after the failover')
  t.equal((await call(a.url, '/auth/logout', undefined, { token: pair.access_token })).status, 204, 'logout works after the failover')
  t.same((await send(b, pair.access_token)).code, 'JOTGATE_TOKEN_REVOKED')
  for (const gw of [a, b]) t.equal((await fetch(`${gw.adminUrl!}/readyz`)).status, 200, '/readyz 200 again')
})

t.test('a revocation confirmed just before the primary dies survives the failover', async (t) => {
  // Its own topology (started in t.before): the first one has no replica left after its failover.
  const topo2 = topoLag
  const store = { type: 'redis', url: 'redis://127.0.0.1:1', sentinels: topo2.sentinels, name: topo2.name, keyPrefix: uniquePrefix('sentinel-lag'), onError: 'deny' }
  const a = await gatewayOn(store)
  const b = await gatewayOn(store)
  t.teardown(async () => { await a.close(); await b.close() })
  const good = mint()
  const payload = claims()
  const token = mint({ payload })
  t.equal((await send(b, token)).status, 200, 'positive control')
  await topo2.waitInSync()

  // The replica's link breaks and cannot come back (wrong replication
  // credentials), while the Sentinels still count it as a healthy replica:
  // the primary acknowledges writes the replica does not get. Then the
  // primary dies at once, and the Sentinels promote the replica. Without
  // the replica's acknowledgement (WAIT) the call answered 201 here and the
  // token was accepted again after the failover; now it must answer 503,
  // or, if it answers 201, the revocation must have survived.
  const replica = new Redis({ host: '127.0.0.1', port: topo2.replicaPort, maxRetriesPerRequest: 0 })
  replica.on('error', () => {})
  await replica.config('SET', 'masteruser', 'nobody')
  await replica.config('SET', 'masterauth', 'wrong-password')
  replica.disconnect()
  const primary = new Redis({ host: '127.0.0.1', port: topo2.primaryPort, maxRetriesPerRequest: 0 })
  primary.on('error', () => {})
  await primary.client('KILL', 'TYPE', 'replica')
  primary.disconnect()
  const status = await revoke(a, { jti: payload.jti, exp: payload.exp })
  await topo2.killPrimary()
  const killedAt = performance.now()
  t.comment(`revocation call answered ${status} just before the primary was killed`)
  t.ok(status === 201 || status === 503, 'the revocation call answered 201 or 503')

  let back = false
  while (performance.now() - killedAt < 30_000) {
    if ((await send(b, good)).status === 200 && (await send(a, good)).status === 200) { back = true; break }
    await sleep(50)
  }
  t.ok(back, `both instances serve again ${(performance.now() - killedAt).toFixed(0)} ms after the kill`)
  if (status === 201) {
    for (const [name, gw] of [['A', a], ['B', b]] as const) {
      t.same((await send(gw, token)).code, 'JOTGATE_TOKEN_REVOKED', `instance ${name}: the revocation that returned 201 is still enforced after the failover`)
    }
  }
})

t.test('manual failover (the old primary stays up): no confirmed revocation is lost, service goes on', async (t) => {
  const store = { type: 'redis', url: 'redis://127.0.0.1:1', sentinels: topoManual.sentinels, name: topoManual.name, keyPrefix: uniquePrefix('sentinel-manual'), onError: 'deny' }
  const a = await gatewayOn(store)
  const b = await gatewayOn(store)
  t.teardown(async () => { await a.close(); await b.close() })
  const good = mint()
  t.equal((await send(a, good)).status, 200, 'positive control')
  await topoManual.waitInSync()
  const oldPrimary = topoManual.primaryPort

  // Revocations and proxied requests all along, on both instances.
  interface Revocation { payload: Record<string, unknown>, status: number, at: number }
  const revocations: Revocation[] = []
  const answers: number[] = []
  let running = true
  const t0 = performance.now()
  const loops = [a, b].flatMap((gw) => [
    (async () => {
      while (running) {
        const payload = claims()
        const status = await revoke(gw, { jti: payload.jti, exp: payload.exp }).catch(() => 0)
        revocations.push({ payload, status, at: performance.now() - t0 })
        await sleep(20)
      }
    })(),
    (async () => {
      while (running) { answers.push((await send(gw, good)).status); await sleep(20) }
    })()
  ])
  await sleep(300)
  // The old primary is demoted by the Sentinels only ~10 s later: until
  // then it is a master nobody replicates, and what is written to it is lost.
  const sentinel = new Redis({ ...topoManual.sentinels[0]!, maxRetriesPerRequest: 0 })
  sentinel.on('error', () => {})
  t.equal(await sentinel.call('SENTINEL', 'FAILOVER', topoManual.name), 'OK', 'SENTINEL FAILOVER')
  sentinel.disconnect()
  const asked = performance.now() - t0
  let switched: number | undefined
  while (performance.now() - t0 < 20_000) {
    const addr = await topoManual.masterAddr()
    if (addr !== undefined && addr.port !== oldPrimary) { switched = performance.now() - t0; break }
    await sleep(50)
  }
  t.ok(switched !== undefined, 'the Sentinels switched the master')
  await sleep(2000)
  running = false
  await Promise.all(loops)

  const confirmed = revocations.filter((r) => r.status === 201)
  const after = revocations.filter((r) => r.at > (switched ?? Infinity))
  const firstOkAfter = after.find((r) => r.status === 201)
  t.comment(`manual failover: switch ${((switched ?? NaN) - asked).toFixed(0)} ms after SENTINEL FAILOVER; revocations: ${revocations.length}, 201: ${confirmed.length}, ` +
    `503: ${revocations.filter((r) => r.status === 503).length}; first 201 after the switch ${firstOkAfter === undefined ? 'never' : (firstOkAfter.at - switched!).toFixed(0)} ms after it; ` +
    `proxied: ${answers.filter((s) => s === 200).length} x 200, ${answers.filter((s) => s === 503).length} x 503, ${answers.filter((s) => s !== 200 && s !== 503).length} other`)
  t.ok(revocations.every((r) => r.status === 201 || r.status === 503), 'revocation calls: 201 or 503')
  t.ok(answers.every((s) => s === 200 || s === 503), 'proxied calls: 200 or 503')
  t.ok(firstOkAfter !== undefined, 'revocations succeed again after the switch')

  // Every revocation that returned 201 is on the new master, and enforced.
  const master = await topoManual.masterAddr()
  const direct = new Redis({ ...master!, maxRetriesPerRequest: 0 })
  direct.on('error', () => {})
  t.teardown(() => direct.disconnect())
  const prefix = store.keyPrefix
  let missing = 0
  let accepted = 0
  for (const r of confirmed) {
    if (await direct.exists(`${prefix}rv:jti:${r.payload.jti as string}`) !== 1) { missing++; t.comment(`lost: answered 201 at ${r.at.toFixed(0)} ms (failover asked at ${asked.toFixed(0)}, switch at ${switched?.toFixed(0)})`) }
    for (const gw of [a, b]) if ((await send(gw, mint({ payload: r.payload }))).code !== 'JOTGATE_TOKEN_REVOKED') accepted++
  }
  t.equal(missing, 0, `every one of the ${confirmed.length} confirmed revocations is on the new master`)
  t.equal(accepted, 0, 'and refused by both instances')
})
