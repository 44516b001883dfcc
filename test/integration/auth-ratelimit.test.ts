/**
 * Login rate limits (issue 3): per client IP and per username, counted in
 * the store, so the limit holds across two gateway instances sharing Redis.
 * trustProxy makes the last X-Forwarded-For entry the client IP, which lets
 * one test process act as many clients.
 */
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { redisClient } from '../helpers/redis.js'
import { authGateway, usersFile, call, storeConfig, uniquePrefix, type Answer } from './auth-kit.js'

t.test('rate limits shared by two instances', async (t) => {
  const file = await usersFile([{ username: 'victim', password: 'victim-pw', hash: '2b' }, { username: 'other', password: 'other-pw', hash: '2b' }])
  const prefix = uniquePrefix('auth-ratelimit')
  const options = { auth: { users: { file }, rateLimit: { max: 3, window: '1m' } }, storeConfig: storeConfig(prefix), server: { trustProxy: true } }
  const a = await authGateway({ name: 'auth-ratelimit', ...options })
  const b = await authGateway({ name: 'auth-ratelimit', ...options })
  const redis = redisClient()
  t.teardown(async () => { redis.disconnect(); await a.close(); await b.close() })
  const gws = [a, b]
  const ip = () => `10.${randomBytes(1)[0]}.${randomBytes(1)[0]}.${randomBytes(1)[0]! | 1}`
  const attempt = (i: number, from: string, username: string, password: string, form = false): Promise<Answer> =>
    call(gws[i % 2]!.url, '/auth/login', { username, password }, { form, headers: { 'x-forwarded-for': from } })
  const limited = (t: Test, res: Answer, what: string) => {
    t.equal(res.status, 429, what)
    t.equal(res.body?.code, 'JOTGATE_RATE_LIMITED')
    t.equal(res.body?.statusCode, 429)
    const retry = res.headers.get('retry-after')
    t.match(retry, /^\d+$/, 'Retry-After in whole seconds')
    t.ok(Number(retry) >= 1 && Number(retry) <= 60, `Retry-After ${retry} within the 1 minute window`)
  }

  t.test('per username: max attempts from any IPs on either instance', async (t) => {
    // 'victim' with a new IP each time: only the username counter can stop it.
    for (let i = 0; i < 3; i++) {
      const res = await attempt(i, ip(), 'victim', 'wrong')
      t.equal(res.status, 401, `attempt ${i + 1} on instance ${i % 2 === 0 ? 'A' : 'B'}: counted, refused as a wrong password`)
      t.equal(res.body?.code, 'JOTGATE_LOGIN_FAILED')
    }
    limited(t, await attempt(3, ip(), 'victim', 'wrong'), 'attempt 4 on instance B: 429')
    limited(t, await attempt(4, ip(), 'victim', 'victim-pw', true), 'even the right password, from a fresh IP, on instance A')
    limited(t, await attempt(5, ip(), 'VICTIM', 'victim-pw'), 'the username counter ignores case')
    const res = await attempt(6, ip(), 'other', 'other-pw')
    t.equal(res.status, 200, 'another username from another IP is not limited')
  })

  t.test('per IP: max attempts with any usernames on either instance', async (t) => {
    const from = ip()
    for (let i = 0; i < 3; i++) {
      const res = await attempt(i + 1, from, `user-${randomBytes(4).toString('hex')}`, 'pw')
      t.equal(res.status, 401, `attempt ${i + 1}`)
    }
    limited(t, await attempt(4, from, `user-${randomBytes(4).toString('hex')}`, 'pw'), 'a 4th new username from that IP')
    limited(t, await attempt(5, from, 'other', 'other-pw'), 'a valid login from that IP')
    const res = await attempt(6, ip(), `user-${randomBytes(4).toString('hex')}`, 'pw')
    t.equal(res.status, 401, 'another IP is not limited')
  })

  t.test('the counters live in the store, with the window as TTL', async (t) => {
    const keys = await redis.keys(`${prefix}rl:*`)
    t.ok(keys.some((k) => k === `${prefix}rl:login:user:victim`), 'per-username counter')
    t.ok(keys.some((k) => k.startsWith(`${prefix}rl:login:ip:10.`)), 'per-IP counters')
    for (const key of keys) {
      const ttl = await redis.pttl(key)
      t.ok(ttl > 0 && ttl <= 60_000, `${key.slice(prefix.length)}: pttl ${ttl}`)
    }
  })

  t.test('bad bodies are refused before they count', async (t) => {
    const from = ip()
    for (let i = 0; i < 5; i++) {
      const res = await call(a.url, '/auth/login', { username: 'victim2' }, { headers: { 'x-forwarded-for': from } })
      t.equal(res.status, 400)
    }
    const res = await attempt(0, from, 'other', 'other-pw')
    t.equal(res.status, 200, 'the IP has not used up its attempts')
  })
})

t.test('the limit lifts when the window ends', async (t) => {
  const file = await usersFile([{ username: 'frank', password: 'frank-pw', hash: '2b' }])
  const gw = await authGateway({ name: 'auth-ratelimit-window', auth: { users: { file }, rateLimit: { max: 1, window: '1s' } } })
  t.teardown(() => gw.close())
  t.equal((await call(gw.url, '/auth/login', { username: 'frank', password: 'x' })).status, 401)
  const res = await call(gw.url, '/auth/login', { username: 'frank', password: 'frank-pw' })
  t.equal(res.status, 429)
  t.equal(res.headers.get('retry-after'), '1')
  await new Promise((resolve) => setTimeout(resolve, 1100))
  t.equal((await call(gw.url, '/auth/login', { username: 'frank', password: 'frank-pw' })).status, 200, 'after Retry-After')
})
