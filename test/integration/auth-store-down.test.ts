/**
 * Store down (issue 3, CONTRACT section 5): with a private redis-server
 * killed by PID, the token endpoints answer 503 JOTGATE_STORE_UNAVAILABLE
 * (logout never a 204), `auth: none` routes keep working; once Redis is
 * back, so are the endpoints.
 */
import t from 'tap'
import { startRedisServer, REDIS_URL } from '../helpers/redis.js'
import { startGateway } from '../helpers/gateway.js'
import { createRedisStore } from '../../src/store/redis.js'
import { StoreUnavailableError, type Store } from '../../src/store/types.js'
import type { GatewayConfig } from '../../src/config/schema.js'
import { startUpstream } from '../helpers/upstream.js'
import { authGateway, usersFile, call, login, refresh, sleep, storeConfig, uniquePrefix } from './auth-kit.js'

t.test('token endpoints while the store is down', async (t) => {
  const redisProc = await startRedisServer()
  const up = await startUpstream()
  const file = await usersFile([{ username: 'alice', password: 'alice-pw', hash: '2b' }])
  const gw = await authGateway({
    name: 'auth-store-down',
    auth: { users: { file }, rateLimit: { max: 1000 } },
    storeConfig: storeConfig(uniquePrefix('auth-store-down'), redisProc.url),
    routes: [{ path: '/public', upstream: up.url, auth: 'none' }, { path: '/', upstream: up.url }]
  })
  t.teardown(async () => { await gw.close(); await up.close(); await redisProc.stop() })

  const pair = await login(gw.url, 'alice', 'alice-pw')
  const spare = await login(gw.url, 'alice', 'alice-pw')
  t.equal((await fetch(`${gw.url}/private`, { headers: { authorization: `Bearer ${pair.access_token}` } })).status, 200)

  await redisProc.stop()
  for (let i = 0; i < 40 && gw.gateway.store.isHealthy(); i++) await sleep(50)
  t.notOk(gw.gateway.store.isHealthy(), 'the gateway noticed')

  const expect503 = async (what: string, res: Awaited<ReturnType<typeof call>>) => {
    t.equal(res.status, 503, what)
    t.equal(res.body?.code, 'JOTGATE_STORE_UNAVAILABLE', `${what}: code`)
  }
  await expect503('login', await call(gw.url, '/auth/login', { username: 'alice', password: 'alice-pw' }))
  await expect503('login (form)', await call(gw.url, '/auth/login', { username: 'alice', password: 'alice-pw' }, { form: true }))
  await expect503('refresh', await refresh(gw.url, pair.refresh_token))
  await expect503('logout', await call(gw.url, '/auth/logout', undefined, { token: pair.access_token }))
  await expect503('logout with refresh token', await call(gw.url, '/auth/logout', { refresh_token: pair.refresh_token }, { token: pair.access_token }))
  await expect503('logout-all', await call(gw.url, '/auth/logout-all', undefined, { token: pair.access_token }))

  const seen = up.seen.length
  const open = await fetch(`${gw.url}/public/status?x=1`)
  t.equal(open.status, 200, 'an auth: none route keeps working')
  t.equal(up.seen.length, seen + 1)
  t.equal(up.seen.at(-1)!.url, '/public/status?x=1')
  const closed = await fetch(`${gw.url}/private`, { headers: { authorization: `Bearer ${pair.access_token}` } })
  t.equal(closed.status, 503, 'a token route fails closed (onError: deny)')
  t.equal(up.seen.length, seen + 1)
  const jwks = await fetch(`${gw.url}/.well-known/jwks.json`)
  t.equal(jwks.status, 200, 'the JWKS needs no store')
  t.equal(gw.logs.filter((l) => /JOTGATE_INTERNAL|"level":50/.test(l)).length, 0, 'no internal error')

  // Back up (an empty Redis: no persistence), service resumes without a restart.
  await redisProc.restart()
  await gw.gateway.store.ready(5000)
  const out = await call(gw.url, '/auth/logout', undefined, { token: spare.access_token })
  t.equal(out.status, 204, 'logout recorded once the store is back')
  const refused = await fetch(`${gw.url}/private`, { headers: { authorization: `Bearer ${spare.access_token}` } })
  t.equal(refused.status, 401, 'and enforced')
  const again = await login(gw.url, 'alice', 'alice-pw')
  t.equal((await fetch(`${gw.url}/private`, { headers: { authorization: `Bearer ${again.access_token}` } })).status, 200, 'login works again')
})

t.test('logout answers 503, not 204, when the revocation write fails after the token was checked', async (t) => {
  const file = await usersFile([{ username: 'bob', password: 'bob-pw', hash: '2b' }])
  const prefix = uniquePrefix('auth-store-partial')
  const real = createRedisStore({ type: 'redis', url: REDIS_URL, keyPrefix: prefix, onError: 'deny', commandTimeout: '500ms' } as GatewayConfig['store'])
  let failWrites = false
  const fail = () => Promise.reject(new StoreUnavailableError('write refused (test)'))
  const store: Store = {
    ...real,
    revokeJti: (...a) => failWrites ? fail() : real.revokeJti(...a),
    revokeSid: (...a) => failWrites ? fail() : real.revokeSid(...a),
    revokeSub: (...a) => failWrites ? fail() : real.revokeSub(...a)
  }
  const gw = await startGateway({ name: 'auth-store-partial', store, config: { store: storeConfig(prefix), auth: { users: { file }, rateLimit: { max: 1000 } }, routes: [] } })
  t.teardown(() => gw.close())
  const pair = await login(gw.url, 'bob', 'bob-pw')
  failWrites = true
  for (const path of ['/auth/logout', '/auth/logout-all']) {
    const res = await call(gw.url, path, undefined, { token: pair.access_token })
    t.equal(res.status, 503, path)
    t.equal(res.body?.code, 'JOTGATE_STORE_UNAVAILABLE')
  }
  const reuse = await refresh(gw.url, pair.refresh_token)
  t.equal(reuse.status, 200, 'refresh itself needs no revocation write')
  const replay = await refresh(gw.url, pair.refresh_token)
  t.equal(replay.status, 503, 'reuse detection that cannot revoke the session is a 503, not a silent 401')
  t.equal(replay.body?.code, 'JOTGATE_STORE_UNAVAILABLE')
  failWrites = false
  t.equal((await call(gw.url, '/auth/logout', undefined, { token: pair.access_token })).status, 204, 'works once writes do')
})
