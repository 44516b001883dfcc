/**
 * CONTRACT section 7 "Store outage": with `onError: deny`, 503 within 2 s of
 * the store going away and normal service within 10 s of it coming back,
 * without a restart; `auth: none` routes keep working; no revoked token is
 * accepted at any moment. With `allow`, verified tokens pass and the
 * fail-open is logged.
 *
 * The store is a private redis-server, killed by PID (SIGKILL, like a
 * crash). It writes an append-only file so that revocations made before the
 * crash are still there after the restart, as on a production Redis.
 */
import t, { type Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { startUpstream, type Upstream } from '../helpers/upstream.js'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { claims, mint, tamper } from '../helpers/zoo.js'
import { startRedisServer, uniquePrefix, type RedisProcess } from '../helpers/redis.js'
import { createMemoryStore } from '../../src/store/memory.js'
import { StoreUnavailableError, type Store } from '../../src/store/types.js'

interface Sample { token: 'good' | 'revoked', startedAt: number, ms: number, status: number, code: string | undefined }

async function send (url: string, token?: string): Promise<Omit<Sample, 'token'>> {
  const startedAt = performance.now()
  try {
    const res = await fetch(url, {
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(5000)
    })
    const body = await res.json() as { code?: string }
    return { startedAt, ms: performance.now() - startedAt, status: res.status, code: body.code }
  } catch {
    // A hang (timeout) or a dropped connection: status 0 fails every assertion below.
    return { startedAt, ms: performance.now() - startedAt, status: 0, code: undefined }
  }
}

async function setup (t: Test, onError: 'deny' | 'allow'): Promise<{ redis: RedisProcess, up: Upstream, gw: TestGateway }> {
  const dir = mkdtempSync(join(tmpdir(), 'jotgate-redis-'))
  const redis = await startRedisServer(['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir])
  const up = await startUpstream()
  const gw = await startGateway({
    admin: true,
    config: {
      store: { type: 'redis', url: redis.url, keyPrefix: uniquePrefix(`outage-${onError}`), onError },
      routes: [{ path: '/public', upstream: up.url, auth: 'none' }, { path: '/', upstream: up.url }]
    }
  })
  t.teardown(async () => {
    await gw.close()
    await up.close()
    await redis.stop()
    rmSync(dir, { recursive: true, force: true })
  })
  return { redis, up, gw }
}

async function revokeJti (gw: TestGateway, payload: Record<string, unknown>): Promise<number> {
  const res = await fetch(`${gw.adminUrl!}/revocations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jti: payload.jti, exp: payload.exp })
  })
  await res.arrayBuffer()
  return res.status
}

async function readyz (gw: TestGateway): Promise<{ status: number, reasons: string[] }> {
  const res = await fetch(`${gw.adminUrl!}/readyz`)
  const body = await res.json() as { reasons?: string[] }
  return { status: res.status, reasons: body.reasons ?? [] }
}

const seenProxied = (up: Upstream): number => up.seen.filter((s) => s.url.startsWith('/things')).length

t.test('onError deny: 503 fast while Redis is down, back within 10 s, no revoked token ever accepted', async (t) => {
  const { redis, up, gw } = await setup(t, 'deny')
  const good = mint()
  const revokedPayload = claims()
  const revoked = mint({ payload: revokedPayload })

  // Positive controls, and a revocation made before the outage.
  t.equal((await send(`${gw.url}/things`, good)).status, 200, 'positive control: a good token passes')
  t.equal((await send(`${gw.url}/things`, revoked)).status, 200, 'positive control: the other token passes before revocation')
  t.equal(await revokeJti(gw, revokedPayload), 201)
  t.same((await send(`${gw.url}/things`, revoked)).code, 'JOTGATE_TOKEN_REVOKED')
  t.equal((await readyz(gw)).status, 200, 'ready while the store is up')

  // A prober sends the good and the revoked token back to back, all along.
  const samples: Sample[] = []
  let probing = true
  const prober = (async () => {
    while (probing) {
      samples.push({ token: 'good', ...await send(`${gw.url}/things`, good) })
      samples.push({ token: 'revoked', ...await send(`${gw.url}/things`, revoked) })
      await sleep(20)
    }
  })()
  await sleep(300)

  await redis.stop()
  const stoppedAt = performance.now()
  // Requests started after the stop: a burst in parallel, none may hang.
  const burst = await Promise.all(Array.from({ length: 10 }, () => send(`${gw.url}/things`, good)))
  for (const r of burst) {
    t.same([r.status, r.code], [503, 'JOTGATE_STORE_UNAVAILABLE'], 'burst during the outage: 503')
    t.ok(r.ms < 2000, `burst request answered in ${r.ms.toFixed(0)} ms`)
  }
  const pub = await send(`${gw.url}/public/x`)
  t.equal(pub.status, 200, 'auth: none keeps working during the outage')
  t.equal(up.seen.filter((s) => s.url === '/public/x').length, 1)
  const missing = await send(`${gw.url}/things`)
  t.same([missing.status, missing.code], [401, 'JOTGATE_TOKEN_MISSING'], 'a request without a token is still refused as such')
  const forged = await send(`${gw.url}/things`, tamper(good))
  t.same([forged.status, forged.code], [401, 'JOTGATE_TOKEN_SIGNATURE'], 'verification still runs before the store')
  const notReady = await readyz(gw)
  t.equal(notReady.status, 503, '/readyz 503 while the store is down')
  t.ok(notReady.reasons.some((r) => /store/i.test(r)), `reason names the store (${notReady.reasons.join('; ')})`)
  await sleep(1500)

  await redis.restart()
  const restartedAt = performance.now()
  let recoveredAt: number | undefined
  while (performance.now() - restartedAt < 10_000) {
    const last = samples.filter((s) => s.token === 'good' && s.startedAt > restartedAt).at(-1)
    if (last?.status === 200) { recoveredAt = last.startedAt + last.ms; break }
    await sleep(50)
  }
  let readyAgainAt: number | undefined
  while (performance.now() - restartedAt < 10_000) {
    if ((await readyz(gw)).status === 200) { readyAgainAt = performance.now(); break }
    await sleep(50)
  }
  await sleep(200)
  probing = false
  await prober

  // The windows, measured from the prober's point of view.
  const goodSamples = samples.filter((s) => s.token === 'good')
  const firstRefusal = goodSamples.find((s) => s.startedAt >= stoppedAt && s.status === 503)
  const firstRefusalMs = firstRefusal === undefined ? Infinity : firstRefusal.startedAt + firstRefusal.ms - stoppedAt
  const recoveryMs = recoveredAt === undefined ? Infinity : recoveredAt - restartedAt
  t.comment(`deny: first 503 ${firstRefusalMs.toFixed(0)} ms after Redis died (burst max ${Math.max(...burst.map((r) => r.ms)).toFixed(0)} ms)`)
  t.comment(`deny: first 200 ${recoveryMs.toFixed(0)} ms after Redis came back; /readyz 200 after ${readyAgainAt === undefined ? 'never' : (readyAgainAt - restartedAt).toFixed(0)} ms`)
  t.comment(`deny: ${samples.length} probe requests, slowest ${Math.max(...samples.map((s) => s.ms)).toFixed(0)} ms`)
  t.ok(firstRefusalMs < 2000, '503 within 2 s of the store going away')
  t.ok(recoveryMs < 10_000, 'normal service within 10 s of the store coming back')
  t.ok(readyAgainAt !== undefined, '/readyz 200 again within 10 s')

  t.ok(samples.every((s) => s.ms < 2000), 'no request took 2 s or more (none hung)')
  const during = goodSamples.filter((s) => s.startedAt >= stoppedAt && s.startedAt + s.ms <= restartedAt)
  t.ok(during.length > 0, `${during.length} good-token requests during the outage`)
  t.ok(during.every((s) => s.status === 503 && s.code === 'JOTGATE_STORE_UNAVAILABLE'), 'every one of them: 503 JOTGATE_STORE_UNAVAILABLE')
  t.ok(goodSamples.every((s) => s.status === 200 || (s.status === 503 && s.code === 'JOTGATE_STORE_UNAVAILABLE')), 'the good token only ever got 200 or 503')
  const revokedSamples = samples.filter((s) => s.token === 'revoked')
  t.ok(revokedSamples.every((s) => s.status === 401 || s.status === 503), 'the revoked token was never accepted, at any moment')
  t.ok(revokedSamples.some((s) => s.startedAt > restartedAt && s.code === 'JOTGATE_TOKEN_REVOKED'), 'refused as revoked again after recovery')

  // Exact accounting: the upstream saw one request per 200, none of the refusals.
  const accepted = 2 + samples.filter((s) => s.status === 200).length
  t.equal(seenProxied(up), accepted, 'the upstream saw only the accepted requests')

  t.same((await send(`${gw.url}/things`, revoked)).code, 'JOTGATE_TOKEN_REVOKED', 'revoked before the outage, still refused after it')
  t.equal((await send(`${gw.url}/things`, good)).status, 200, 'normal service')
  t.equal((await readyz(gw)).status, 200)
})

t.test('onError allow: a verified token passes during the outage and the fail-open is logged', async (t) => {
  const { redis, up, gw } = await setup(t, 'allow')
  const good = mint()
  const revokedPayload = claims()
  const revoked = mint({ payload: revokedPayload })
  t.equal((await send(`${gw.url}/things`, good)).status, 200, 'positive control')
  t.equal(await revokeJti(gw, revokedPayload), 201)
  t.same((await send(`${gw.url}/things`, revoked)).code, 'JOTGATE_TOKEN_REVOKED', 'refused while the store is up')
  const failOpenLines = (): Record<string, unknown>[] =>
    gw.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.reason === 'store-fail-open')
  t.equal(failOpenLines().length, 0, 'no fail-open while the store is up')

  await redis.stop()
  const stoppedAt = performance.now()
  const seen = seenProxied(up)
  const during = await send(`${gw.url}/things`, good)
  t.equal(during.status, 200, 'a verified token passes while the store is down')
  t.ok(during.ms < 2000, `answered in ${during.ms.toFixed(0)} ms`)
  t.comment(`allow: first fail-open answer ${(during.startedAt + during.ms - stoppedAt).toFixed(0)} ms after Redis died`)
  t.equal(seenProxied(up), seen + 1)
  t.ok(failOpenLines().length >= 1, 'a log line with reason store-fail-open')
  t.notOk(gw.logs.some((l) => l.includes(good)), 'the log never holds the token')

  const forged = await send(`${gw.url}/things`, tamper(good))
  t.same([forged.status, forged.code], [401, 'JOTGATE_TOKEN_SIGNATURE'], 'an unverified token is still refused')
  t.equal(seenProxied(up), seen + 1, 'the upstream did not see the forged one')

  await redis.restart()
  const restartedAt = performance.now()
  let code: string | undefined
  while (performance.now() - restartedAt < 10_000) {
    code = (await send(`${gw.url}/things`, revoked)).code
    if (code === 'JOTGATE_TOKEN_REVOKED') break
    await sleep(50)
  }
  t.comment(`allow: revocations enforced again ${(performance.now() - restartedAt).toFixed(0)} ms after Redis came back`)
  t.equal(code, 'JOTGATE_TOKEN_REVOKED', 'revocations enforced again after recovery')
})

t.test('onError allow fails open only when the store is unreachable, not on any error', async (t) => {
  const up = await startUpstream()
  const inner = createMemoryStore()
  let failure: Error | undefined
  const store: Store = { ...inner, isRevoked: async (subject) => { if (failure !== undefined) throw failure; return inner.isRevoked(subject) }, revokedLocally: () => undefined }
  const gw = await startGateway({
    store,
    config: { store: { type: 'memory', onError: 'allow' }, routes: [{ path: '/', upstream: up.url }] }
  })
  t.teardown(async () => { await gw.close(); await up.close() })
  const good = mint()
  t.equal((await send(`${gw.url}/things`, good)).status, 200, 'positive control')
  failure = new StoreUnavailableError('down')
  t.equal((await send(`${gw.url}/things`, good)).status, 200, 'an unreachable store fails open')
  failure = new TypeError('a bug in a store')
  const res = await send(`${gw.url}/things`, good)
  t.same([res.status, res.code], [503, 'JOTGATE_STORE_UNAVAILABLE'], 'any other error fails closed')
  t.equal(seenProxied(up), 2, 'the upstream did not see it')
})

t.test('onError deny, Redis hung (SIGSTOP): 503 after the command timeout, no request hangs', async (t) => {
  const { redis, up, gw } = await setup(t, 'deny')
  const pid = redis.proc.pid!
  let paused = false
  t.teardown(() => { if (paused) process.kill(pid, 'SIGCONT') })
  const good = mint()
  t.equal((await send(`${gw.url}/things`, good)).status, 200, 'positive control')

  process.kill(pid, 'SIGSTOP')
  paused = true
  const hung = await Promise.all(Array.from({ length: 5 }, () => send(`${gw.url}/things`, good)))
  for (const r of hung) {
    t.same([r.status, r.code], [503, 'JOTGATE_STORE_UNAVAILABLE'], '503 while Redis does not answer')
    t.ok(r.ms < 2000, `answered in ${r.ms.toFixed(0)} ms`)
  }
  t.comment(`hung: 503 after ${hung.map((r) => r.ms.toFixed(0)).join(", ")} ms`)
  t.equal((await readyz(gw)).status, 503, '/readyz 503 while Redis does not answer')
  t.equal((await send(`${gw.url}/public/y`)).status, 200, 'auth: none keeps working')

  process.kill(pid, 'SIGCONT')
  paused = false
  const resumedAt = performance.now()
  let status = 0
  while (performance.now() - resumedAt < 10_000) {
    status = (await send(`${gw.url}/things`, good)).status
    if (status === 200) break
    await sleep(50)
  }
  t.comment(`hung: first 200 ${(performance.now() - resumedAt).toFixed(0)} ms after Redis resumed`)
  t.equal(status, 200, 'normal service within 10 s')
  t.equal((await readyz(gw)).status, 200, '/readyz 200 again')
  t.equal(seenProxied(up), 2, 'the upstream saw only the two accepted requests')
})
