/**
 * CONTRACT section 5, the admin listener: health and readiness, the admin
 * token on writes, strict revocation bodies (400, never 500), and never a
 * 201 that revoked nothing.
 */
import t, { type Test } from 'tap'
import { startUpstream, type Upstream } from '../helpers/upstream.js'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { claims, mint } from '../helpers/zoo.js'
import { REDIS_URL, startRedisServer, trackPrefixes, uniquePrefix } from '../helpers/redis.js'

const TOKEN = 's3cret'
const prefixes = trackPrefixes(t)

async function setup (t: Test, opts: { token?: string, url?: string } = {}): Promise<{ up: Upstream, gw: TestGateway }> {
  const keyPrefix = uniquePrefix('admin')
  prefixes.push(keyPrefix)
  const up = await startUpstream()
  const gw = await startGateway({
    config: {
      admin: { host: '127.0.0.1', port: 0, ...(opts.token === undefined ? {} : { token: opts.token }) },
      store: { type: 'redis', url: opts.url ?? REDIS_URL, keyPrefix },
      routes: [{ path: '/', upstream: up.url }]
    }
  })
  t.teardown(async () => { await gw.close(); await up.close() })
  return { up, gw }
}

interface Answer { status: number, body: Record<string, unknown> }

async function call (gw: TestGateway, method: string, path: string, init: { headers?: Record<string, string>, body?: string } = {}): Promise<Answer> {
  const res = await fetch(`${gw.adminUrl!}${path}`, { method, ...init })
  const text = await res.text()
  let body: Record<string, unknown> = {}
  try { body = JSON.parse(text) as Record<string, unknown> } catch {}
  return { status: res.status, body }
}

const postJson = (gw: TestGateway, body: string, authorization?: string): Promise<Answer> =>
  call(gw, 'POST', '/revocations', {
    headers: { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }) },
    body
  })

async function proxied (gw: TestGateway, token: string): Promise<number> {
  const res = await fetch(`${gw.url}/x`, { headers: { authorization: `Bearer ${token}` } })
  await res.arrayBuffer()
  return res.status
}

t.test('healthz and readyz', async (t) => {
  const { gw } = await setup(t)
  const health = await call(gw, 'GET', '/healthz')
  t.equal(health.status, 200)
  const ready = await call(gw, 'GET', '/readyz')
  t.equal(ready.status, 200, 'ready while the store is up')
  t.equal((await call(gw, 'HEAD', '/healthz')).status, 200)
})

t.test('without admin.token, a revocation needs no bearer', async (t) => {
  const { gw } = await setup(t)
  const payload = claims()
  const token = mint({ payload })
  t.equal(await proxied(gw, token), 200, 'positive control')
  t.equal((await postJson(gw, JSON.stringify({ jti: payload.jti, exp: payload.exp }))).status, 201)
  t.equal(await proxied(gw, token), 401)
})

t.test('admin.token: writes need the right bearer; nothing is revoked without it', async (t) => {
  const { up, gw } = await setup(t, { token: TOKEN })
  const payload = claims()
  const token = mint({ payload })
  const body = JSON.stringify({ jti: payload.jti, exp: payload.exp })
  const refusals: [string, string | undefined][] = [
    ['no Authorization', undefined],
    ['wrong token', 'Bearer nope'],
    ['prefix of the token', 'Bearer s3cre'],
    ['token plus a suffix', 'Bearer s3cret2'],
    ['another scheme', `Basic ${TOKEN}`],
    ['token only, no scheme', TOKEN],
    ['empty bearer', 'Bearer '],
    ['two credentials', `Bearer ${TOKEN} ${TOKEN}`]
  ]
  for (const [name, authorization] of refusals) {
    const res = await postJson(gw, body, authorization)
    t.equal(res.status, 401, `${name}: 401`)
    t.equal(res.body.code, 'JOTGATE_ADMIN_UNAUTHORIZED', `${name}: code`)
    t.equal(res.body.statusCode, 401)
  }
  const sidRefused = await postJson(gw, JSON.stringify({ sid: payload.sid }), 'Bearer wrong')
  t.equal(sidRefused.status, 401)
  const subRefused = await postJson(gw, JSON.stringify({ sub: payload.sub }))
  t.equal(subRefused.status, 401)
  t.equal(await proxied(gw, token), 200, 'nothing was revoked by the refused calls')
  t.equal((await call(gw, 'GET', '/healthz')).status, 200, 'reads need no token')
  t.equal((await call(gw, 'GET', '/readyz')).status, 200)

  const ok = await postJson(gw, body, `bearer ${TOKEN}`)
  t.equal(ok.status, 201, 'the right token (scheme case-insensitive): 201')
  t.equal(await proxied(gw, token), 401, 'and the token is revoked')
  t.equal(up.seen.length, 1, 'the upstream saw only the positive control')
})

t.test('bad revocation bodies: 400 JOTGATE_BAD_REQUEST, never 500, nothing revoked', async (t) => {
  const { gw } = await setup(t, { token: TOKEN })
  const auth = `Bearer ${TOKEN}`
  const payload = claims()
  const token = mint({ payload })
  const { jti, sid, sub, exp } = payload as { jti: string, sid: string, sub: string, exp: number }
  const bodies: [string, string, string?][] = [
    ['empty object', '{}'],
    ['jti without exp', JSON.stringify({ jti })],
    ['exp not a number', JSON.stringify({ jti, exp: 'x' })],
    ['exp numeric string', JSON.stringify({ jti, exp: String(exp) })],
    ['exp negative', JSON.stringify({ jti, exp: -1 })],
    ['exp zero', JSON.stringify({ jti, exp: 0 })],
    ['exp absurdly large', JSON.stringify({ jti, exp: 1e300 })],
    ['exp null', JSON.stringify({ jti, exp: null })],
    ['sub and sid', JSON.stringify({ sub, sid })],
    ['jti and sub', JSON.stringify({ jti, exp, sub })],
    ['array', JSON.stringify([{ jti, exp }])],
    ['not JSON', '{jti: nope'],
    ['JSON null', 'null'],
    ['JSON string', JSON.stringify(jti)],
    ['extra field', JSON.stringify({ sub, reason: 'x' })],
    ['exp with sub', JSON.stringify({ sub, exp })],
    ['empty sub', JSON.stringify({ sub: '' })],
    ['sub not a string', JSON.stringify({ sub: 42 })],
    ['sid an object', JSON.stringify({ sid: { $ne: 1 } })],
    ['jti too long', JSON.stringify({ jti: 'j'.repeat(600), exp })],
    ['empty body', ''],
    ['body over the limit', JSON.stringify({ sub, pad: 'x'.repeat(5000) })],
    ['__proto__ smuggling', `{"sub":"${sub}","__proto__":{"x":1}}`],
    ['text/plain body', JSON.stringify({ sub }), 'text/plain']
  ]
  for (const [name, body, type] of bodies) {
    const res = await call(gw, 'POST', '/revocations', { headers: { 'content-type': type ?? 'application/json', authorization: auth }, body })
    t.equal(res.status, 400, `${name}: 400`)
    t.equal(res.body.code, 'JOTGATE_BAD_REQUEST', `${name}: code`)
  }
  t.equal(await proxied(gw, token), 200, 'nothing was revoked by the bad bodies')
  t.equal((await postJson(gw, JSON.stringify({ sid }), auth)).status, 201, 'positive control: a good body')
  t.equal(await proxied(gw, token), 401)
})

t.test('store down: POST /revocations 503, never a 201 that revoked nothing', async (t) => {
  const redis = await startRedisServer()
  t.teardown(() => redis.stop())
  const { gw } = await setup(t, { token: TOKEN, url: redis.url })
  const auth = `Bearer ${TOKEN}`
  const payload = claims()
  const token = mint({ payload })
  t.equal(await proxied(gw, token), 200, 'positive control')

  await redis.stop()
  for (const body of [{ jti: payload.jti, exp: payload.exp }, { sid: payload.sid }, { sub: payload.sub }]) {
    const res = await postJson(gw, JSON.stringify(body), auth)
    t.equal(res.status, 503, `${Object.keys(body)[0]}: 503`)
    t.equal(res.body.code, 'JOTGATE_STORE_UNAVAILABLE')
  }
  const ready = await call(gw, 'GET', '/readyz')
  t.equal(ready.status, 503, '/readyz 503 while the store is down')
  t.equal((await call(gw, 'GET', '/healthz')).status, 200, '/healthz still 200: the process runs')
  const unauth = await postJson(gw, JSON.stringify({ sid: payload.sid }))
  t.equal(unauth.status, 401, 'the admin token is checked before the store')

  await redis.restart()
  const restarted = Date.now()
  let res: Answer | undefined
  while (Date.now() - restarted < 10_000) {
    res = await postJson(gw, JSON.stringify({ sid: payload.sid }), auth)
    if (res.status !== 503) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.equal(res?.status, 201, 'once the store is back: 201')
  t.equal(await proxied(gw, token), 401, 'and the 201 revoked the token')
})

t.test('unknown admin paths: 404', async (t) => {
  const { gw } = await setup(t, { token: TOKEN })
  for (const path of ['/nope', '/revocations/x', '/metrics/../nope', '/healthz/x']) {
    const res = await call(gw, 'GET', path)
    t.equal(res.status, 404, `GET ${path}`)
    t.equal(res.body.code, 'JOTGATE_ROUTE_NOT_FOUND')
  }
  const post = await call(gw, 'POST', '/nope', { headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{}' })
  t.equal(post.status, 404, 'POST to an unknown path with the right token')
  t.equal(post.body.code, 'JOTGATE_ROUTE_NOT_FOUND')
})
