/**
 * POST /auth/refresh (issue 3): the whole flow over HTTP against real
 * Redis, rotation, reuse detection revoking the session, ten concurrent
 * refreshes with one token, refresh tokens stored only as hashes.
 */
import t from 'tap'
import { startUpstream } from '../helpers/upstream.js'
import { redisClient } from '../helpers/redis.js'
import { authGateway, usersFile, call, login, refresh, decode, type Pair } from './auth-kit.js'
import { refreshHash } from '../../src/auth/sessions.js'

t.test('refresh flows', async (t) => {
  const up = await startUpstream()
  const file = await usersFile([
    { username: 'alice', password: 'alice-pw', hash: '2b', claims: { roles: ['ops'] } },
    { username: 'bob', password: 'bob-pw', hash: '2b' }
  ])
  const gw = await authGateway({ name: 'auth-refresh', auth: { users: { file }, rateLimit: { max: 1000 } }, routes: [{ path: '/', upstream: up.url }] })
  const redis = redisClient()
  t.teardown(async () => { redis.disconnect(); await gw.close(); await up.close() })
  const prefix = gw.gateway.generation().config.store.keyPrefix
  const get = (token: string) => fetch(`${gw.url}/orders/1`, { headers: { authorization: `Bearer ${token}` } })
    .then(async (r) => ({ status: r.status, body: await r.json() as Record<string, unknown> }))

  t.test('login -> upstream -> refresh -> reuse detection -> logout -> refused', async (t) => {
    // login, then the upstream
    const first = await login(gw.url, 'alice', 'alice-pw')
    let seen = up.seen.length
    t.equal((await get(first.access_token)).status, 200)
    t.equal(up.seen.length, seen + 1)
    t.equal(up.seen.at(-1)!.headers['x-user-id'], 'alice')

    // refresh: a new pair in the same session; the old refresh token is spent
    const r1 = await refresh(gw.url, first.refresh_token)
    t.equal(r1.status, 200)
    t.equal(r1.headers.get('cache-control'), 'no-store')
    const second = r1.body as unknown as Pair
    t.same(Object.keys(second).sort(), ['access_token', 'expires_in', 'refresh_expires_in', 'refresh_token', 'token_type'])
    t.not(second.refresh_token, first.refresh_token)
    const a = decode(first.access_token).payload
    const b = decode(second.access_token).payload
    t.equal(b.sid, a.sid, 'same sid')
    t.not(b.jti, a.jti, 'new jti')
    t.equal(b.sub, 'alice')
    t.same(b.roles, ['ops'], 'user claims carried over')
    t.equal(await redis.exists(`${prefix}rt:${refreshHash(second.refresh_token)}`), 1)

    seen = up.seen.length
    t.equal((await get(second.access_token)).status, 200, 'the refreshed access token works')
    t.equal(up.seen.length, seen + 1)

    // reuse of the spent refresh token: refused, and the whole session ends
    const replay = await refresh(gw.url, first.refresh_token)
    t.equal(replay.status, 401)
    t.equal(replay.body?.code, 'JOTGATE_REFRESH_INVALID')

    seen = up.seen.length
    for (const token of [second.access_token, first.access_token]) {
      const res = await get(token)
      t.equal(res.status, 401)
      t.equal(res.body.code, 'JOTGATE_TOKEN_REVOKED')
    }
    t.equal(up.seen.length, seen, 'the upstream saw nothing')
    const afterReuse = await refresh(gw.url, second.refresh_token)
    t.equal(afterReuse.status, 401, 'the live refresh token of the session is dead too')
    t.equal(afterReuse.body?.code, 'JOTGATE_REFRESH_INVALID')

    // a new session, logged out: its tokens are refused
    const third = await login(gw.url, 'alice', 'alice-pw')
    t.equal((await get(third.access_token)).status, 200, 'another session of the same user is unaffected')
    const out = await call(gw.url, '/auth/logout', undefined, { token: third.access_token })
    t.equal(out.status, 204)
    t.equal(out.text, '')
    seen = up.seen.length
    const refused = await get(third.access_token)
    t.equal(refused.status, 401)
    t.equal(refused.body.code, 'JOTGATE_TOKEN_REVOKED')
    t.equal(up.seen.length, seen, 'the upstream saw nothing')
    const dead = await refresh(gw.url, third.refresh_token)
    t.equal(dead.status, 401)
    t.equal(dead.body?.code, 'JOTGATE_REFRESH_INVALID')
  })

  t.test('ten concurrent refreshes with one token: exactly one succeeds', async (t) => {
    for (let round = 0; round < 3; round++) {
      const pair = await login(gw.url, 'bob', 'bob-pw')
      const answers = await Promise.all(Array.from({ length: 10 }, () => refresh(gw.url, pair.refresh_token)))
      const ok = answers.filter((a) => a.status === 200)
      t.equal(ok.length, 1, `round ${round}: one 200 (got ${answers.map((a) => a.status).join(',')})`)
      t.equal(answers.filter((a) => a.status === 401 && a.body?.code === 'JOTGATE_REFRESH_INVALID').length, 9, 'nine 401 JOTGATE_REFRESH_INVALID')
      // The losers presented a spent token: reuse, so the winner's session ends as well.
      const winner = ok[0]?.body as unknown as Pair | undefined
      if (winner !== undefined) {
        const res = await get(winner.access_token)
        t.equal(res.body.code, 'JOTGATE_TOKEN_REVOKED', 'the session was revoked by the replays')
      }
    }
  })

  t.test('the same race across two instances sharing Redis', async (t) => {
    const other = await authGateway({ name: 'auth-refresh-b', auth: { users: { file }, rateLimit: { max: 1000 } }, storeConfig: { type: 'redis', url: gw.gateway.generation().config.store.url, keyPrefix: prefix } })
    t.teardown(() => other.close())
    const tally: number[] = []
    for (let round = 0; round < 12; round++) {
      const pair = await login(gw.url, 'bob', 'bob-pw')
      const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => refresh(i % 2 === 0 ? gw.url : other.url, pair.refresh_token)))
      const ok = answers.filter((a) => a.status === 200).length
      tally.push(ok)
      t.equal(answers.filter((a) => a.status === 401 && a.body?.code === 'JOTGATE_REFRESH_INVALID').length, 10 - ok, 'every other answer: 401 JOTGATE_REFRESH_INVALID')
    }
    t.same(tally, Array(12).fill(1), `exactly one 200 per round: ${tally.join(',')}`)
  })

  t.test('refresh tokens are stored only as a hash', async (t) => {
    const pair = await login(gw.url, 'bob', 'bob-pw')
    const next = (await refresh(gw.url, pair.refresh_token)).body as unknown as Pair
    await call(gw.url, '/auth/logout', { refresh_token: next.refresh_token }, { token: next.access_token })
    const raw = [pair.refresh_token, next.refresh_token]
    const keys: string[] = []
    let cursor = '0'
    do {
      const [c, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
      cursor = c
      keys.push(...batch)
    } while (cursor !== '0')
    t.ok(keys.some((k) => k.includes(':rt:')), `refresh records exist (${keys.length} keys scanned)`)
    let values = 0
    for (const key of keys) {
      for (const token of raw) t.notOk(key.includes(token), 'no key holds a raw refresh token')
      const type = await redis.type(key)
      const value = type === 'string' ? await redis.get(key) : JSON.stringify(await redis.dump(key))
      values++
      for (const token of raw) {
        if (value?.includes(token) === true) t.fail(`${key} holds a raw refresh token`)
      }
    }
    t.equal(values, keys.length)
    // The record holds what refresh needs, and no token.
    const stored = await redis.get(`${prefix}rt:${refreshHash(pair.refresh_token)}`)
    t.ok(stored !== null)
    const record = JSON.parse(stored!.slice(1)) as Record<string, unknown>
    t.equal(stored![0], '0', 'spent')
    t.equal(record.sub, 'bob')
    t.equal(record.sid, decode(pair.access_token).payload.sid, 'bound to the session')
  })

  t.test('unknown, tampered and foreign refresh tokens: 401 JOTGATE_REFRESH_INVALID', async (t) => {
    const pair = await login(gw.url, 'bob', 'bob-pw')
    const flipped = `${pair.refresh_token.slice(0, -1)}${pair.refresh_token.endsWith('A') ? 'B' : 'A'}`
    for (const token of ['x', 'A'.repeat(43), flipped, pair.access_token, refreshHash(pair.refresh_token), 'a'.repeat(4097), '']) {
      const res = await refresh(gw.url, token)
      t.equal(res.status, 401, `${token.slice(0, 12)}... (${token.length})`)
      t.equal(res.body?.code, 'JOTGATE_REFRESH_INVALID')
    }
    const form = await call(gw.url, '/auth/refresh', { refresh_token: pair.refresh_token }, { form: true })
    t.equal(form.status, 200, 'a form body works and the genuine token was untouched')
  })
})
