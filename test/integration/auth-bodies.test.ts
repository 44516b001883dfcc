/**
 * Malformed requests to the token endpoints (issue 3): every bad body is a
 * 400 JOTGATE_BAD_REQUEST, never a 500; other methods are 405.
 */
import t, { type Test } from 'tap'
import { authGateway, usersFile, call, login, type CallOptions } from './auth-kit.js'
import { rawRequest, rawText } from '../helpers/zoo.js'

const JSON_CT = { 'content-type': 'application/json' }
const FORM_CT = { 'content-type': 'application/x-www-form-urlencoded' }

t.test('bad bodies and methods', async (t) => {
  const file = await usersFile([{ username: 'alice', password: 'alice-pw', hash: '2b' }])
  const gw = await authGateway({ name: 'auth-bodies', auth: { users: { file }, rateLimit: { max: 1000 }, bodyLimit: 1024 } })
  t.teardown(() => gw.close())
  const pair = await login(gw.url, 'alice', 'alice-pw')
  const big = 'x'.repeat(2000)

  const expect400 = async (t: Test, path: string, what: string, body: Record<string, unknown> | undefined, options: CallOptions = {}) => {
    const res = await call(gw.url, path, body, options)
    t.equal(res.status, 400, `${path} ${what}`)
    t.equal(res.body?.code, 'JOTGATE_BAD_REQUEST', `${path} ${what}: code`)
    t.equal(res.body?.statusCode, 400)
  }

  t.test('login', async (t) => {
    const p = '/auth/login'
    const cases: [string, Record<string, unknown>][] = [
      ['empty object', {}],
      ['no password', { username: 'alice' }],
      ['no username', { password: 'alice-pw' }],
      ['number username', { username: 12, password: 'alice-pw' }],
      ['number password', { username: 'alice', password: 1234 }],
      ['boolean password', { username: 'alice', password: true }],
      ['null username', { username: null, password: 'alice-pw' }],
      ['array username', { username: ['alice'], password: 'alice-pw' }],
      ['object password', { username: 'alice', password: { $ne: '' } }],
      ['empty username', { username: '', password: 'alice-pw' }],
      ['empty password', { username: 'alice', password: '' }],
      ['number client_id', { username: 'alice', password: 'alice-pw', client_id: 7 }]
    ]
    for (const [what, body] of cases) await expect400(t, p, what, body)
    await expect400(t, p, 'huge JSON body', { username: 'alice', password: big })
    await expect400(t, p, 'huge form body', { username: 'alice', password: big }, { form: true })
    await expect400(t, p, 'form: repeated field', undefined, { headers: FORM_CT, raw: 'username=alice&username=bob&password=alice-pw' })
    await expect400(t, p, 'form: missing password', undefined, { headers: FORM_CT, raw: 'username=alice' })
    await expect400(t, p, 'form: empty', undefined, { headers: FORM_CT, raw: '' })
    await expect400(t, p, 'invalid JSON', undefined, { headers: JSON_CT, raw: '{"username": "alice", ' })
    await expect400(t, p, 'empty JSON body', undefined, { headers: JSON_CT, raw: '' })
    await expect400(t, p, 'no body, no content type', undefined)
    await expect400(t, p, 'text/plain', undefined, { headers: { 'content-type': 'text/plain' }, raw: 'username=alice&password=alice-pw' })
    await expect400(t, p, 'text/plain JSON', undefined, { headers: { 'content-type': 'text/plain' }, raw: '{"username":"alice","password":"alice-pw"}' })
    await expect400(t, p, 'application/xml', undefined, { headers: { 'content-type': 'application/xml' }, raw: '<login/>' })
    await expect400(t, p, 'multipart', undefined, { headers: { 'content-type': 'multipart/form-data; boundary=x' }, raw: '--x--' })
    for (const raw of ['null', '[]', '"alice"', '42', 'true', '[{"username":"alice","password":"alice-pw"}]']) {
      await expect400(t, p, `JSON ${raw}`, undefined, { headers: JSON_CT, raw })
    }
    await expect400(t, p, 'JSON with __proto__', undefined, { headers: JSON_CT, raw: '{"username":"alice","password":"alice-pw","__proto__":{"x":1}}' })
    const huge = await rawRequest(gw.url, rawText('/auth/login', [['Content-Type', 'application/json'], ['Content-Length', String(10 * 1024 * 1024)]], 'POST'))
    t.equal(huge.status, 400, 'a declared 10 MiB body is refused up front')
    t.equal(huge.json?.code, 'JOTGATE_BAD_REQUEST')
    const ok = await call(gw.url, p, { username: 'alice', password: 'alice-pw', extra: 'ignored' })
    t.equal(ok.status, 200, 'an unknown extra field is ignored')
  })

  t.test('refresh', async (t) => {
    const p = '/auth/refresh'
    for (const [what, body] of [['empty object', {}], ['number', { refresh_token: 123456 }], ['array', { refresh_token: [pair.refresh_token] }], ['null', { refresh_token: null }], ['object', { refresh_token: {} }]] as const) {
      await expect400(t, p, what, body as Record<string, unknown>)
    }
    await expect400(t, p, 'huge body', { refresh_token: big })
    await expect400(t, p, 'invalid JSON', undefined, { headers: JSON_CT, raw: '{refresh_token}' })
    await expect400(t, p, 'empty JSON body', undefined, { headers: JSON_CT, raw: '' })
    await expect400(t, p, 'no body', undefined)
    await expect400(t, p, 'text/plain', undefined, { headers: { 'content-type': 'text/plain' }, raw: pair.refresh_token })
    await expect400(t, p, 'form: repeated field', undefined, { headers: FORM_CT, raw: `refresh_token=${pair.refresh_token}&refresh_token=x` })
  })

  t.test('logout and logout-all', async (t) => {
    const token = pair.access_token
    for (const p of ['/auth/logout', '/auth/logout-all']) {
      await expect400(t, p, 'invalid JSON', undefined, { token, headers: JSON_CT, raw: '{' })
      await expect400(t, p, 'huge body', { refresh_token: big }, { token })
    }
    // logout reads an optional body; logout-all reads none.
    await expect400(t, '/auth/logout', 'text/plain', undefined, { token, headers: { 'content-type': 'text/plain' }, raw: 'bye' })
    await expect400(t, '/auth/logout', 'number refresh_token', { refresh_token: 5 }, { token })
    await expect400(t, '/auth/logout', 'JSON array', undefined, { token, headers: JSON_CT, raw: '[]' })
    const res = await fetch(`${gw.url}/data`, { headers: { authorization: `Bearer ${token}` } })
    t.not((await res.json() as { code?: string }).code, 'JOTGATE_TOKEN_REVOKED', 'no bad request revoked the token')
  })

  t.test('other methods on the token paths: 405 with Allow: POST', async (t) => {
    for (const path of ['/auth/login', '/auth/refresh', '/auth/logout', '/auth/logout-all']) {
      for (const method of ['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
        const res = await call(gw.url, path, undefined, { method })
        t.equal(res.status, 405, `${method} ${path}`)
        t.equal(res.headers.get('allow'), 'POST')
        if (method !== 'HEAD') t.equal(res.body?.code, 'JOTGATE_METHOD_NOT_ALLOWED')
      }
    }
  })

  t.test('fields longer than 4096 characters, within bodyLimit', async (t) => {
    const roomy = await authGateway({ name: 'auth-bodies-roomy', auth: { users: { file }, rateLimit: { max: 1000 }, bodyLimit: 65536 } })
    t.teardown(() => roomy.close())
    for (const body of [{ username: 'alice', password: 'p'.repeat(5000) }, { username: 'a'.repeat(5000), password: 'alice-pw' }]) {
      const res = await call(roomy.url, '/auth/login', body)
      t.equal(res.status, 400)
      t.equal(res.body?.code, 'JOTGATE_BAD_REQUEST')
    }
    const long = await call(roomy.url, '/auth/refresh', { refresh_token: 'r'.repeat(5000) })
    t.equal(long.status, 401, 'an over-long refresh token string is simply not a valid one')
    t.equal(long.body?.code, 'JOTGATE_REFRESH_INVALID')
  })

  t.test('nothing above was a 500', async (t) => {
    const errors = gw.logs.filter((l) => /"level":50|"statusCode":500|JOTGATE_INTERNAL/.test(l))
    t.same(errors, [], 'no internal error logged')
  })
})
