/**
 * CORS answered by the gateway through @fastify/cors (issue 7), with real
 * preflight requests as a browser sends them: per gateway and per route;
 * preflights need no token and never reach the upstream; a refused origin
 * gets no CORS header at all; refusals carry CORS headers so pages can
 * read the error code.
 */
import t from 'tap'
import { startUpstream } from '../helpers/upstream.js'
import { baseConfig, startGateway } from '../helpers/gateway.js'
import { keyDir, mint, claims } from '../helpers/zoo.js'
import { loadConfigObject } from '../../src/config/load.js'
import { send, corsHeaders } from '../helpers/http.js'

const APP = 'https://app.example'
const OTHER = 'https://other.example'

t.test('CORS per gateway and per route', async (t) => {
  const up = await startUpstream()
  const gw = await startGateway({
    name: 'cors',
    config: {
      cors: { origins: [APP], credentials: true, headers: ['Authorization', 'Content-Type'], exposeHeaders: ['X-Request-Id'], maxAge: '1m' },
      routes: [
        { path: '/other', upstream: up.url, cors: { origins: [OTHER], methods: ['GET'] } },
        { path: '/nocors', upstream: up.url, auth: 'none', cors: { origins: [] } },
        { path: '/open', upstream: up.url, auth: 'none' },
        { path: '/api', upstream: up.url }
      ]
    }
  })
  t.teardown(async () => { await gw.close(); await up.close() })
  const token = mint({ payload: claims({ sub: 'alice' }) })
  const preflight = (path: string, origin: string, method = 'POST') =>
    send(gw.url, 'OPTIONS', path, [['Origin', origin], ['Access-Control-Request-Method', method], ['Access-Control-Request-Headers', 'authorization,content-type']])

  t.test('a preflight from an allowed origin is answered without a token, upstream untouched', async (t) => {
    const before = up.seen.length
    const res = await preflight('/api/orders', APP)
    t.equal(res.status, 204)
    t.equal(res.headers['access-control-allow-origin'], APP)
    t.equal(res.headers['access-control-allow-credentials'], 'true')
    t.equal(res.headers['access-control-allow-methods'], 'GET, HEAD, POST, PUT, PATCH, DELETE')
    t.equal(res.headers['access-control-allow-headers'], 'Authorization, Content-Type')
    t.equal(res.headers['access-control-max-age'], '60')
    t.match(res.headers.vary, /Origin/, 'Vary: Origin (the answer depends on it)')
    t.equal(res.headers['www-authenticate'], undefined, 'no token asked for')
    const open = await preflight('/open/x', APP)
    t.equal(open.status, 204, 'auth: none routes answer preflights the same way')
    t.equal(up.seen.length, before, 'the upstream saw no preflight')
  })

  t.test('a refused origin gets no CORS headers, and its preflight does not reach the upstream', async (t) => {
    const before = up.seen.length
    for (const [path, origin, label] of [['/api/x', 'https://evil.example', 'unknown origin'], ['/api/x', 'http://app.example', 'other scheme'], ['/other/x', APP, "allowed by the gateway, not by this route's cors"]] as const) {
      const res = await preflight(path, origin)
      t.equal(res.status, 204, `${label}: answered by the gateway`)
      t.same(corsHeaders(res), {}, `${label}: no CORS header`)
    }
    t.equal(up.seen.length, before, 'the upstream saw no preflight')
    const actual = await send(gw.url, 'GET', '/api/x', [['Origin', 'https://evil.example'], ['Authorization', `Bearer ${token}`]])
    t.equal(actual.status, 200, 'a simple request from a refused origin is still served (CORS guards reading, not sending)')
    t.same(corsHeaders(actual), {}, 'but its answer carries no CORS header')
  })

  t.test("a route's cors replaces the gateway's", async (t) => {
    const res = await preflight('/other/x', OTHER, 'GET')
    t.equal(res.headers['access-control-allow-origin'], OTHER)
    t.equal(res.headers['access-control-allow-credentials'], undefined, 'credentials off on that route')
    t.equal(res.headers['access-control-allow-methods'], 'GET')
    const before = up.seen.length
    const none = await preflight('/nocors/x', APP)
    t.same(corsHeaders(none), {}, 'origins: [] turns CORS off')
    t.equal(up.seen.length, before + 1, 'without CORS on the route, OPTIONS is an ordinary request the upstream answers')
    t.equal(up.seen.at(-1)?.method, 'OPTIONS')
  })

  t.test('actual requests carry CORS headers; the upstream cannot widen them', async (t) => {
    up.handle((_req, res) => {
      res.setHeader('access-control-allow-origin', '*')
      res.setHeader('access-control-allow-methods', 'TRACE')
      res.end('{}')
    })
    t.teardown(() => up.handle(undefined))
    const res = await send(gw.url, 'GET', '/api/x', [['Origin', APP], ['Authorization', `Bearer ${token}`]])
    t.equal(res.status, 200)
    t.equal(res.headers['access-control-allow-origin'], APP, "the gateway's answer, not the upstream's *")
    t.equal(res.headers['access-control-allow-credentials'], 'true')
    t.equal(res.headers['access-control-expose-headers'], 'X-Request-Id')
    t.equal(res.headers['access-control-allow-methods'], undefined, "the upstream's Access-Control-* dropped")
  })

  t.test('refusals carry CORS headers so the page can read the code', async (t) => {
    const before = up.seen.length
    const res = await send(gw.url, 'GET', '/api/x', [['Origin', APP]])
    t.equal(res.status, 401)
    t.equal(res.json?.code, 'JOTGATE_TOKEN_MISSING')
    t.equal(res.headers['access-control-allow-origin'], APP)
    const options = await send(gw.url, 'OPTIONS', '/api/x', [['Origin', APP]])
    t.equal(options.status, 401, 'an OPTIONS that is no preflight (no Access-Control-Request-Method) needs a token like any request')
    t.equal(up.seen.length, before, 'upstream saw nothing')
  })

  t.test('the token endpoints and unmatched paths follow the gateway settings', async (t) => {
    const res = await preflight('/.well-known/jwks.json', APP, 'GET')
    t.equal(res.status, 204)
    t.equal(res.headers['access-control-allow-origin'], APP)
    const jwks = await send(gw.url, 'GET', '/.well-known/jwks.json', [['Origin', APP]])
    t.equal(jwks.status, 200)
    t.equal(jwks.headers['access-control-allow-origin'], APP)
  })
})

t.test('without any cors setting there is no CORS answer', async (t) => {
  const up = await startUpstream()
  const gw = await startGateway({ name: 'cors-off', config: { routes: [{ path: '/', upstream: up.url, auth: 'none' }] } })
  t.teardown(async () => { await gw.close(); await up.close() })
  const res = await send(gw.url, 'OPTIONS', '/x', [['Origin', APP], ['Access-Control-Request-Method', 'POST']])
  t.same(corsHeaders(res), {}, 'no CORS header')
  t.equal(up.seen.at(-1)?.method, 'OPTIONS', 'OPTIONS forwarded as before')

  // @fastify/cors is installed only when the config answers CORS somewhere;
  // a reload cannot install it afterwards and says so, keeping the old config.
  const withCors = loadConfigObject(baseConfig('cors-off', { cors: { origins: [APP] }, routes: [{ path: '/', upstream: up.url, auth: 'none' }] }), keyDir)
  await t.rejects(gw.gateway.reload(withCors), { name: 'ConfigError', message: /^cors: CORS was off when jotgate started; turning it on takes a restart$/ })
  const after = await send(gw.url, 'OPTIONS', '/x', [['Origin', APP], ['Access-Control-Request-Method', 'POST']])
  t.same(corsHeaders(after), {}, 'still no CORS header after the refused reload')
})

t.test('a gateway started with CORS can reload it off and on again', async (t) => {
  const up = await startUpstream()
  const routes = [{ path: '/', upstream: up.url, auth: 'none' }]
  const gw = await startGateway({ name: 'cors-reload', config: { cors: { origins: [APP] }, routes } })
  t.teardown(async () => { await gw.close(); await up.close() })
  const preflight = () => send(gw.url, 'OPTIONS', '/x', [['Origin', APP], ['Access-Control-Request-Method', 'POST']])
  t.equal(corsHeaders(await preflight())['access-control-allow-origin'], APP, 'on at start')
  await gw.gateway.reload(loadConfigObject(baseConfig('cors-reload', { routes }), keyDir))
  t.same(corsHeaders(await preflight()), {}, 'off after a reload')
  await gw.gateway.reload(loadConfigObject(baseConfig('cors-reload', { cors: { origins: [APP] }, routes }), keyDir))
  t.equal(corsHeaders(await preflight())['access-control-allow-origin'], APP, 'on again')
})
