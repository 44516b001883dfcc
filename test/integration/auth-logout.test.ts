/**
 * POST /auth/logout and /auth/logout-all (issue 3), and the lifetime of the
 * revocation entries they leave in Redis.
 */
import t from 'tap'
import { startUpstream } from '../helpers/upstream.js'
import { redisClient } from '../helpers/redis.js'
import { mint, claims } from '../helpers/zoo.js'
import { authGateway, usersFile, call, login, refresh, decode, sleep, type Pair } from './auth-kit.js'
import type { Redis } from 'ioredis'

async function keysUnder (redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [c, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500)
    cursor = c
    keys.push(...batch)
  } while (cursor !== '0')
  return keys
}

t.test('logout and logout-all', async (t) => {
  const up = await startUpstream()
  const file = await usersFile([
    { username: 'alice', password: 'alice-pw', hash: '2b' },
    { username: 'bob', password: 'bob-pw', hash: '2b' }
  ])
  const gw = await authGateway({ name: 'auth-logout', auth: { users: { file }, rateLimit: { max: 1000 } }, routes: [{ path: '/', upstream: up.url }] })
  const redis = redisClient()
  t.teardown(async () => { redis.disconnect(); await gw.close(); await up.close() })
  const prefix = gw.gateway.generation().config.store.keyPrefix
  const get = async (token: string) => {
    const r = await fetch(`${gw.url}/data`, { headers: { authorization: `Bearer ${token}` } })
    return { status: r.status, body: await r.json() as Record<string, unknown> }
  }

  t.test('logout revokes the access token and its session', async (t) => {
    const pair = await login(gw.url, 'alice', 'alice-pw')
    const other = await login(gw.url, 'alice', 'alice-pw')
    t.equal((await get(pair.access_token)).status, 200)
    const res = await call(gw.url, '/auth/logout', undefined, { token: pair.access_token })
    t.equal(res.status, 204)
    t.equal(res.headers.get('cache-control'), 'no-store')
    const { jti, sid, exp } = decode(pair.access_token).payload as { jti: string, sid: string, exp: number }
    t.equal(await redis.exists(`${prefix}rv:jti:${jti}`), 1, 'jti recorded')
    t.equal(await redis.exists(`${prefix}rv:sid:${sid}`), 1, 'sid recorded')
    const jtiTtl = await redis.ttl(`${prefix}rv:jti:${jti}`)
    t.ok(jtiTtl > 0 && jtiTtl <= exp + 30 - Math.floor(Date.now() / 1000) + 1, `jti entry lives until exp + clockTolerance (${jtiTtl} s)`)

    const seen = up.seen.length
    const refused = await get(pair.access_token)
    t.equal(refused.status, 401)
    t.equal(refused.body.code, 'JOTGATE_TOKEN_REVOKED')
    t.equal(up.seen.length, seen, 'the upstream saw nothing')
    const r = await refresh(gw.url, pair.refresh_token)
    t.equal(r.status, 401, "refresh with the session's refresh token fails")
    t.equal(r.body?.code, 'JOTGATE_REFRESH_INVALID')
    const again = await call(gw.url, '/auth/logout', undefined, { token: pair.access_token })
    t.equal(again.status, 401, 'a revoked token cannot log out again')
    t.equal(again.body?.code, 'JOTGATE_TOKEN_REVOKED')
    t.equal((await get(other.access_token)).status, 200, 'another session of the user lives on')
  })

  t.test('logout with the refresh token in the body (JSON or form) spends it', async (t) => {
    for (const form of [false, true]) {
      const pair = await login(gw.url, 'bob', 'bob-pw')
      const next = (await refresh(gw.url, pair.refresh_token)).body as unknown as Pair
      const res = await call(gw.url, '/auth/logout', { refresh_token: next.refresh_token }, { token: next.access_token, form })
      t.equal(res.status, 204)
      const r = await refresh(gw.url, next.refresh_token)
      t.equal(r.body?.code, 'JOTGATE_REFRESH_INVALID')
      t.equal((await get(next.access_token)).body.code, 'JOTGATE_TOKEN_REVOKED')
    }
  })

  t.test("a refresh token of another session is left alone: its owner's next refresh is not taken for reuse", async (t) => {
    const alice = await login(gw.url, 'alice', 'alice-pw')
    const bob = await login(gw.url, 'bob', 'bob-pw')
    const res = await call(gw.url, '/auth/logout', { refresh_token: bob.refresh_token }, { token: alice.access_token })
    t.equal(res.status, 204, 'alice is logged out')
    t.equal((await get(alice.access_token)).body.code, 'JOTGATE_TOKEN_REVOKED')
    const r = await refresh(gw.url, bob.refresh_token)
    t.equal(r.status, 200, "bob's refresh token still works once")
    t.equal((await get((r.body as unknown as Pair).access_token)).status, 200, "and bob's session lives on")
  })

  t.test('logout and logout-all need a valid access token', async (t) => {
    const pair = await login(gw.url, 'bob', 'bob-pw')
    for (const path of ['/auth/logout', '/auth/logout-all']) {
      const none = await call(gw.url, path)
      t.equal(none.status, 401, `${path} without a token`)
      t.equal(none.body?.code, 'JOTGATE_TOKEN_MISSING')
      const garbage = await call(gw.url, path, undefined, { token: 'not.a.token' })
      t.equal(garbage.status, 401)
      t.equal(garbage.body?.code, 'JOTGATE_TOKEN_MALFORMED')
      const expired = mint({ payload: claims({ sub: 'bob', iat: 1000, nbf: 1000, exp: 2000 }) })
      t.equal((await call(gw.url, path, undefined, { token: expired })).body?.code, 'JOTGATE_TOKEN_EXPIRED')
      const basic = await call(gw.url, path, undefined, { headers: { authorization: 'Basic Ym9iOmJvYi1wdw==' } })
      t.equal(basic.status, 401)
      t.equal(basic.body?.code, 'JOTGATE_TOKEN_MALFORMED')
      // The refresh token is not an access token.
      const rt = await call(gw.url, path, undefined, { token: pair.refresh_token })
      t.equal(rt.status, 401)
    }
    t.equal((await get(pair.access_token)).status, 200, 'none of this revoked anything')
  })

  t.test('logout of a token without jti and sid is refused, not a 204 that revoked nothing', async (t) => {
    const token = mint({ payload: claims({ sub: 'zed', jti: undefined, sid: undefined }) })
    const res = await call(gw.url, '/auth/logout', undefined, { token })
    t.equal(res.status, 400)
    t.equal(res.body?.code, 'JOTGATE_BAD_REQUEST')
  })

  t.test('logout-all revokes every token of the subject; a fresh login works right after', async (t) => {
    const s1 = await login(gw.url, 'alice', 'alice-pw')
    const s2 = await login(gw.url, 'alice', 'alice-pw', {}, { form: true })
    const s2b = (await refresh(gw.url, s2.refresh_token)).body as unknown as Pair
    const bob = await login(gw.url, 'bob', 'bob-pw')
    for (const p of [s1, s2b, bob]) t.equal((await get(p.access_token)).status, 200)

    const res = await call(gw.url, '/auth/logout-all', undefined, { token: s1.access_token })
    t.equal(res.status, 204)
    t.equal(res.text, '')
    const cutOff = Number(await redis.get(`${prefix}rv:sub:alice`))
    t.ok(cutOff >= (decode(s2b.access_token).payload.iat as number), 'cut-off recorded for sub alice')

    const seen = up.seen.length
    for (const p of [s1, s2, s2b]) {
      const r = await get(p.access_token)
      t.equal(r.status, 401)
      t.equal(r.body.code, 'JOTGATE_TOKEN_REVOKED')
    }
    t.equal(up.seen.length, seen, 'the upstream saw none of them')
    for (const rt of [s1.refresh_token, s2b.refresh_token]) {
      const r = await refresh(gw.url, rt)
      t.equal(r.status, 401, 'refresh tokens of the subject are revoked too')
      t.equal(r.body?.code, 'JOTGATE_REFRESH_INVALID')
    }
    t.equal((await get(bob.access_token)).status, 200, 'other subjects are untouched')

    // Immediately after: at most the documented one-second wait.
    const started = Date.now()
    const fresh = await login(gw.url, 'alice', 'alice-pw')
    const took = Date.now() - started
    t.ok(took < 2500, `fresh login answered in ${took} ms (<= 1 s wait + hashing)`)
    t.ok((decode(fresh.access_token).payload.iat as number) > cutOff, 'issued after the cut-off second')
    t.equal((await get(fresh.access_token)).status, 200, 'the fresh token works at the proxy')
    const r = await refresh(gw.url, fresh.refresh_token)
    t.equal(r.status, 200, 'and so does its refresh token')
    t.equal((await get((r.body as unknown as Pair).access_token)).status, 200)
  })

  t.test('every revocation entry has a TTL > 0 and <= its bound', async (t) => {
    // Default config: refreshTtl 7d + maxLifetime 24h + clockTolerance 30s for sid and sub.
    const sessionTtl = 7 * 86400 + 86400 + 30
    const keys = await keysUnder(redis, `${prefix}rv:*`)
    t.ok(keys.length >= 5, `${keys.length} revocation entries`)
    for (const key of keys) {
      const ttl = await redis.ttl(key)
      const bound = key.includes(':rv:jti:') ? 600 + 30 : sessionTtl
      t.ok(ttl > 0 && ttl <= bound, `${key.slice(prefix.length)}: ttl ${ttl} in (0, ${bound}]`)
    }
    for (const key of await keysUnder(redis, `${prefix}rt:*`)) {
      const ttl = await redis.ttl(key)
      t.ok(ttl > 0 && ttl <= 7 * 86400, `refresh record ttl ${ttl}`)
    }
  })
})

t.test('with lifetimes of a few seconds, revocation entries and refresh records disappear by themselves', async (t) => {
  const file = await usersFile([{ username: 'carol', password: 'carol-pw', hash: '2b' }])
  const gw = await authGateway({
    name: 'auth-logout-expiry',
    auth: { users: { file }, rateLimit: { max: 1000, window: '2s' } },
    tokens: { accessTtl: '2s', refreshTtl: '3s', maxLifetime: '2s', clockTolerance: 0 }
  })
  const redis = redisClient()
  t.teardown(async () => { redis.disconnect(); await gw.close() })
  const prefix = gw.gateway.generation().config.store.keyPrefix

  // Every kind of entry: jti + sid (logout), sid (reuse), sub (logout-all).
  const a = await login(gw.url, 'carol', 'carol-pw')
  t.equal((await call(gw.url, '/auth/logout', undefined, { token: a.access_token })).status, 204)
  const b = await login(gw.url, 'carol', 'carol-pw')
  t.equal((await refresh(gw.url, b.refresh_token)).status, 200)
  t.equal((await refresh(gw.url, b.refresh_token)).body?.code, 'JOTGATE_REFRESH_INVALID', 'reuse')
  const c = await login(gw.url, 'carol', 'carol-pw')
  t.equal((await call(gw.url, '/auth/logout-all', undefined, { token: c.access_token })).status, 204)
  const last = Date.now()

  const rv = await keysUnder(redis, `${prefix}rv:*`)
  t.ok(rv.some((k) => k.includes(':rv:jti:')) && rv.some((k) => k.includes(':rv:sid:')) && rv.some((k) => k.includes(':rv:sub:')), 'jti, sid and sub entries exist')
  // sessionTtl = refreshTtl 3 + maxLifetime 2 + tolerance 0 = 5 s
  for (const key of rv) {
    const ttl = await redis.ttl(key)
    t.ok(ttl > 0 && ttl <= 5, `${key.slice(prefix.length)} ttl ${ttl} in (0, 5]`)
  }
  t.ok((await keysUnder(redis, `${prefix}rt:*`)).length >= 3, 'refresh records exist')

  let remaining = -1
  while (Date.now() - last < 8000) {
    remaining = (await keysUnder(redis, `${prefix}*`)).length
    if (remaining === 0) break
    await sleep(250)
  }
  t.equal(remaining, 0, `every key under the prefix gone after ${Date.now() - last} ms (bound: 5 s + 1 s rounding)`)
})
