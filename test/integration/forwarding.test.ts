import t from 'tap'
import { startUpstream } from '../helpers/upstream.js'
import { startGateway } from '../helpers/gateway.js'
import { mint, claims } from '../helpers/zoo.js'

t.test('a verified request reaches the upstream with claim headers and without the token', async (t) => {
  const up = await startUpstream()
  const gw = await startGateway({ name: 'forwarding', config: { routes: [{ path: '/', upstream: up.url }] } })
  t.teardown(async () => { await gw.close(); await up.close() })

  const token = mint({ payload: claims({ sub: 'alice', roles: ['admin', 'ops'], azp: 'web' }) })
  const res = await fetch(`${gw.url}/orders/7?x=1&y=a+b`, { headers: { authorization: `Bearer ${token}` } })
  t.equal(res.status, 200)
  t.equal(up.seen.length, 1)
  const seen = up.seen[0]!
  t.equal(seen.url, '/orders/7?x=1&y=a+b', 'path and raw query forwarded as they came')
  t.equal(seen.headers['x-user-id'], 'alice')
  t.equal(seen.headers['x-user-roles'], 'admin,ops')
  t.equal(seen.headers['x-client-id'], 'web')
  t.equal(seen.headers.authorization, undefined, 'token not forwarded by default')
  t.match(seen.headers['x-request-id'], /^[0-9a-f-]{36}$/)
  t.equal(seen.headers['x-forwarded-for'], '127.0.0.1')
  t.equal(seen.headers['x-forwarded-proto'], 'http')
  t.equal(res.headers.get('x-upstream'), 'echo', 'upstream response headers passed back')
})

t.test('a request without a token never reaches the upstream', async (t) => {
  const up = await startUpstream()
  const gw = await startGateway({ name: 'forwarding', config: { routes: [{ path: '/', upstream: up.url }] } })
  t.teardown(async () => { await gw.close(); await up.close() })
  const res = await fetch(`${gw.url}/orders`)
  t.equal(res.status, 401)
  t.equal(res.headers.get('www-authenticate'), 'Bearer realm="jotgate"')
  const body = await res.json() as { code: string, statusCode: number, error: string, message: string }
  t.same(body, { statusCode: 401, error: 'Unauthorized', code: 'JOTGATE_TOKEN_MISSING', message: body.message })
  t.equal(up.seen.length, 0)
})

t.test('one cached token on two routes with their own claim headers: each route gets its own, every time', async (t) => {
  // The identity headers of a cached token are kept for the route they
  // were made for; a request to another route must never get them.
  const up = await startUpstream()
  const gw = await startGateway({
    name: 'forwarding',
    config: {
      routes: [
        { path: '/tenant', upstream: up.url, headers: { 'X-Tenant': 'tenant', 'X-User-Id': 'email' } },
        { path: '/', upstream: up.url }
      ]
    }
  })
  t.teardown(async () => { await gw.close(); await up.close() })
  const token = mint({ payload: claims({ sub: 'alice', email: 'alice@example.test', tenant: 'acme' }) })
  for (const path of ['/tenant/a', '/other', '/tenant/b', '/tenant/c', '/other']) {
    const res = await fetch(`${gw.url}${path}`, { headers: { authorization: `Bearer ${token}` } })
    t.equal(res.status, 200, path)
  }
  t.same(up.seen.map((s) => [s.url, s.headers['x-user-id'], s.headers['x-tenant']]), [
    ['/tenant/a', 'alice@example.test', 'acme'],
    ['/other', 'alice', undefined],
    ['/tenant/b', 'alice@example.test', 'acme'],
    ['/tenant/c', 'alice@example.test', 'acme'],
    ['/other', 'alice', undefined]
  ])
})
