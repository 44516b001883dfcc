/**
 * POST /auth/login (issue 3): users file with scrypt and bcrypt hashes, JSON
 * and form bodies, RFC 6749 section 5.1 answers, the claims and header of
 * the access tokens, clients with their own lifetimes.
 */
import t from 'tap'
import { ISSUER, AUDIENCE } from '../helpers/zoo.js'
import { startUpstream } from '../helpers/upstream.js'
import { redisClient } from '../helpers/redis.js'
import { authGateway, usersFile, call, login, refresh, decode, type Pair } from './auth-kit.js'
import { refreshHash } from '../../src/auth/sessions.js'

const RESERVED_OVERRIDES = { sub: 'mallory', iss: 'https://evil.test', aud: 'other', exp: 1, iat: 1, nbf: 1, jti: 'fixed', sid: 'fixed', azp: 'evil' }
const FIELDS = ['access_token', 'expires_in', 'refresh_expires_in', 'refresh_token', 'token_type']
const nowS = () => Math.floor(Date.now() / 1000)

t.test('login against a users file', async (t) => {
  const up = await startUpstream()
  const file = await usersFile([
    { username: 'alice', password: 'alice-pw', claims: { roles: ['admin', 'ops'], email: 'alice@example.test', ...RESERVED_OVERRIDES } },
    { username: 'bob', password: 'bob-pw', hash: '2a' },
    { username: 'carol', password: 'carol-pw', hash: '2b' },
    { username: 'dave', password: 'dave-pw', hash: '2y', claims: { roles: 'user' } }
  ])
  const gw = await authGateway({ name: 'auth-login', auth: { users: { file }, rateLimit: { max: 1000 } }, routes: [{ path: '/', upstream: up.url }] })
  const redis = redisClient()
  t.teardown(async () => { redis.disconnect(); await gw.close(); await up.close() })
  const prefix = gw.gateway.generation().config.store.keyPrefix

  let alice: Pair
  t.test('a JSON body with a scrypt user: RFC 6749 5.1 fields, access token claims and header', async (t) => {
    const before = nowS()
    const res = await call(gw.url, '/auth/login', { username: 'alice', password: 'alice-pw' })
    const after = nowS()
    t.equal(res.status, 200)
    t.match(res.headers.get('content-type'), /^application\/json/)
    t.equal(res.headers.get('cache-control'), 'no-store', 'RFC 6749 5.1: no-store')
    t.equal(res.headers.get('pragma'), 'no-cache')
    alice = res.body as unknown as Pair
    t.same(Object.keys(alice).sort(), FIELDS)
    t.equal(alice.token_type, 'Bearer')
    t.equal(alice.expires_in, 600, 'accessTtl defaults to 10 minutes')
    t.equal(alice.refresh_expires_in, 7 * 86400, 'refreshTtl defaults to 7 days')

    const { header, payload } = decode(alice.access_token)
    t.same(header, { alg: 'ES256', typ: 'JWT', kid: 'es256' }, 'signed by the sign: true key, kid and typ JWT')
    t.equal(payload.iss, ISSUER)
    t.equal(payload.sub, 'alice', 'a user claim named sub does not replace the subject')
    t.equal(payload.aud, AUDIENCE)
    t.type(payload.iat, 'number')
    t.ok((payload.iat as number) >= before && (payload.iat as number) <= after, 'iat is now')
    t.equal(payload.nbf, payload.iat)
    t.equal((payload.exp as number) - (payload.iat as number), 600, 'lifetime accessTtl')
    t.match(payload.jti, /^[A-Za-z0-9_-]{22,}$/)
    t.match(payload.sid, /^[A-Za-z0-9_-]{22,}$/)
    t.not(payload.jti, 'fixed')
    t.not(payload.sid, 'fixed')
    t.notOk('azp' in payload, 'no azp without auth.clients')
    t.same(payload.roles, ['admin', 'ops'], "the user's claims")
    t.equal(payload.email, 'alice@example.test')

    // Opaque refresh token of at least 256 bits.
    t.notMatch(alice.refresh_token, /\./, 'not a JWT')
    t.match(alice.refresh_token, /^[A-Za-z0-9_-]+$/)
    t.ok(Buffer.from(alice.refresh_token, 'base64url').length >= 32, '>= 256 bits')
    t.equal(await redis.exists(`${prefix}rt:${refreshHash(alice.refresh_token)}`), 1, 'stored under its hash')
  })

  t.test('the issued access token passes the proxy with the claim headers', async (t) => {
    const res = await fetch(`${gw.url}/orders`, { headers: { authorization: `Bearer ${alice.access_token}` } })
    t.equal(res.status, 200)
    const seen = up.seen.at(-1)!
    t.equal(seen.headers['x-user-id'], 'alice')
    t.equal(seen.headers['x-user-roles'], 'admin,ops')
    t.equal(seen.headers['x-client-id'], undefined)
    t.equal(seen.headers.authorization, undefined)
  })

  t.test('a form body, with a $2a$ bcrypt user', async (t) => {
    const res = await call(gw.url, '/auth/login', { username: 'bob', password: 'bob-pw' }, { form: true })
    t.equal(res.status, 200)
    t.same(Object.keys(res.body!).sort(), FIELDS)
    t.equal(decode((res.body as unknown as Pair).access_token).payload.sub, 'bob')
    t.equal(res.headers.get('cache-control'), 'no-store')
  })

  t.test('$2b$ and $2y$ bcrypt hashes are accepted', async (t) => {
    const carol = await login(gw.url, 'carol', 'carol-pw')
    t.equal(decode(carol.access_token).payload.sub, 'carol')
    const dave = await login(gw.url, 'dave', 'dave-pw', {}, { form: true })
    t.equal(decode(dave.access_token).payload.roles, 'user')
  })

  t.test('wrong password and unknown user: 401 JOTGATE_LOGIN_FAILED alike', async (t) => {
    for (const [username, password] of [['alice', 'wrong'], ['bob', 'alice-pw'], ['nobody', 'alice-pw'], ['ALICE', 'alice-pw'], ['dave', 'Dave-pw']]) {
      const res = await call(gw.url, '/auth/login', { username, password })
      t.equal(res.status, 401, `${username}/${password}`)
      t.equal(res.body?.code, 'JOTGATE_LOGIN_FAILED')
      t.equal(res.body?.statusCode, 401)
      t.notOk('access_token' in (res.body ?? {}))
    }
  })

  t.test('client_id without auth.clients is ignored: no azp', async (t) => {
    const pair = await login(gw.url, 'bob', 'bob-pw', { client_id: 'web' })
    t.notOk('azp' in decode(pair.access_token).payload)
  })

  t.test('every login opens its own session', async (t) => {
    const a = await login(gw.url, 'carol', 'carol-pw')
    const b = await login(gw.url, 'carol', 'carol-pw')
    t.not(decode(a.access_token).payload.sid, decode(b.access_token).payload.sid)
    t.not(decode(a.access_token).payload.jti, decode(b.access_token).payload.jti)
    t.not(a.refresh_token, b.refresh_token)
  })
})

t.test('with auth.clients, login names one; each client has its own lifetimes', async (t) => {
  const file = await usersFile([{ username: 'erin', password: 'erin-pw', hash: '2b', claims: { roles: ['user'] } }])
  const gw = await authGateway({
    name: 'auth-login-clients',
    auth: { users: { file }, rateLimit: { max: 1000 }, clients: { web: { accessTtl: '2m', refreshTtl: '1h' }, cli: {}, mobile: { refreshTtl: 120 } } }
  })
  const redis = redisClient()
  t.teardown(async () => { redis.disconnect(); await gw.close() })
  const prefix = gw.gateway.generation().config.store.keyPrefix

  t.test('missing or unknown client_id: 400 JOTGATE_CLIENT_UNKNOWN', async (t) => {
    const cases: Record<string, unknown>[] = [{}, { client_id: 'nope' }, { client_id: '__proto__' }, { client_id: 'toString' }, { client_id: 'WEB' }]
    for (const extra of cases) {
      const res = await call(gw.url, '/auth/login', { username: 'erin', password: 'erin-pw', ...extra })
      t.equal(res.status, 400, JSON.stringify(extra))
      t.equal(res.body?.code, 'JOTGATE_CLIENT_UNKNOWN')
    }
    const form = await call(gw.url, '/auth/login', { username: 'erin', password: 'erin-pw' }, { form: true })
    t.equal(form.body?.code, 'JOTGATE_CLIENT_UNKNOWN', 'form body without client_id')
  })

  t.test('per-client accessTtl and refreshTtl, azp set, kept across refresh', async (t) => {
    const web = await login(gw.url, 'erin', 'erin-pw', { client_id: 'web' })
    t.equal(web.expires_in, 120)
    t.equal(web.refresh_expires_in, 3600)
    const p = decode(web.access_token).payload
    t.equal(p.azp, 'web')
    t.equal((p.exp as number) - (p.iat as number), 120)
    const ttl = await redis.ttl(`${prefix}rt:${refreshHash(web.refresh_token)}`)
    t.ok(ttl > 3590 && ttl <= 3600, `refresh record lives refreshTtl (${ttl} s)`)

    const next = await refresh(gw.url, web.refresh_token)
    t.equal(next.status, 200)
    const pair = next.body as unknown as Pair
    t.equal(pair.expires_in, 120)
    t.equal(pair.refresh_expires_in, 3600)
    const q = decode(pair.access_token).payload
    t.equal(q.azp, 'web')
    t.equal(q.sid, p.sid, 'same session')
    t.same(q.roles, ['user'])
    t.equal((q.exp as number) - (q.iat as number), 120)

    const cli = await login(gw.url, 'erin', 'erin-pw', { client_id: 'cli' }, { form: true })
    t.equal(cli.expires_in, 600, 'a client without its own TTLs uses tokens.accessTtl')
    t.equal(cli.refresh_expires_in, 7 * 86400)
    t.equal(decode(cli.access_token).payload.azp, 'cli')

    const mobile = await login(gw.url, 'erin', 'erin-pw', { client_id: 'mobile' })
    t.equal(mobile.expires_in, 600)
    t.equal(mobile.refresh_expires_in, 120, 'a duration given as seconds')
  })

  t.test('a wrong password with a known client is still 401', async (t) => {
    const res = await call(gw.url, '/auth/login', { username: 'erin', password: 'nope', client_id: 'web' })
    t.equal(res.status, 401)
    t.equal(res.body?.code, 'JOTGATE_LOGIN_FAILED')
  })
})
