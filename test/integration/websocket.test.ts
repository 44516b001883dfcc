/**
 * WebSocket routes (issue 7, CONTRACT section 7) with real `ws` clients and
 * a real WebSocket upstream on loopback: the upgrade goes through the whole
 * pipeline (401/403 before any upgrade, the upstream sees nothing), the
 * upstream gets the identity headers, frames flow both ways, and the
 * gateway closes the socket at expiry (4001) and within 2 s after a
 * revocation made on another instance sharing the store (4003).
 */
import t from 'tap'
import { connect as tcp } from 'node:net'
import { WebSocket } from 'ws'
import { startGateway, baseConfig, type TestGateway } from '../helpers/gateway.js'
import { startWsUpstream } from '../helpers/ws-upstream.js'
import { REDIS_URL, uniquePrefix, startRedisServer } from '../helpers/redis.js'
import { mint, claims, now, keyDir } from '../helpers/zoo.js'
import { loadConfigObject } from '../../src/config/load.js'
import { usersFile } from './auth-kit.js'

interface Opened { ws?: WebSocket, status?: number, body?: Record<string, unknown>, headers?: Record<string, unknown> }

/** Opens a WebSocket; resolves with the open socket, or with the HTTP refusal. */
function open (url: string, options: { headers?: Record<string, string>, protocols?: string[] } = {}): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options.protocols ?? [], { headers: options.headers ?? {} })
    ws.once('open', () => resolve({ ws }))
    ws.once('unexpected-response', (req, res) => {
      let text = ''
      res.on('data', (c: Buffer) => { text += String(c) })
      res.on('end', () => {
        req.destroy()
        let body: Record<string, unknown> | undefined
        try { body = JSON.parse(text) as Record<string, unknown> } catch { body = undefined }
        resolve({ status: res.statusCode ?? 0, ...(body === undefined ? {} : { body }), headers: res.headers })
      })
    })
    ws.once('error', reject)
  })
}

const message = (ws: WebSocket): Promise<{ data: Buffer, binary: boolean }> =>
  new Promise((resolve) => ws.once('message', (data, binary) => resolve({ data: data as Buffer, binary })))

const closed = (ws: WebSocket): Promise<{ code: number, reason: string, at: number }> =>
  new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: String(reason), at: Date.now() })))

/** An upgrade request written by hand (paths a URL parser would tidy up); resolves with the status. */
function rawUpgrade (base: string, path: string, extra = ''): Promise<{ status: number, text: string }> {
  const { hostname, port } = new URL(base)
  return new Promise((resolve, reject) => {
    const socket = tcp(Number(port), hostname, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`)
    })
    let text = ''
    socket.on('data', (c: Buffer) => { text += String(c) })
    socket.on('end', () => resolve({ status: Number(text.split(' ')[1]), text }))
    socket.on('error', reject)
  })
}

const ws = (gw: TestGateway, path: string) => `${gw.url.replace('http', 'ws')}${path}`

/** One sample of a gateway's metrics, read from its registry. */
async function metric (gw: TestGateway, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const all = await gw.gateway.metrics.registry.getMetricsAsJSON()
  const found = all.find((m) => m.name === name)
  const sample = found?.values.find((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
  return sample?.value
}

t.test('websocket routes', async (t) => {
  const up = await startWsUpstream()
  const file = await usersFile([{ username: 'alice', password: 'pw', hash: '2b' }])
  const config = {
    store: { type: 'redis', url: REDIS_URL, keyPrefix: uniquePrefix('websocket') },
    tokens: { ...baseConfig().tokens as object, clockTolerance: '0s' },
    auth: { users: { file }, rateLimit: { max: 1000 } },
    routes: [
      { path: '/open', upstream: up.url, auth: 'none', websocket: true },
      { path: '/admin-ws', upstream: up.url, websocket: true, require: { roles: ['admin'] } },
      { path: '/ws', upstream: up.url, websocket: true, rewrite: '/socket', tokenSources: { query: {}, cookie: { name: 'jg' } } },
      { path: '/reject', upstream: up.url, websocket: true, auth: 'none' },
      { path: '/down', upstream: 'http://127.0.0.1:1', websocket: true, auth: 'none' },
      { path: '/http', upstream: up.url }
    ]
  }
  // Two instances sharing one store: sockets on A, revocations through B.
  const a = await startGateway({ name: 'websocket', config })
  const b = await startGateway({ name: 'websocket', config, admin: true })
  t.teardown(async () => { await b.close(); await a.close(); await up.close() })
  const user = (sub: string, extra: Record<string, unknown> = {}) => mint({ payload: claims({ sub, roles: ['user'], ...extra }) })

  t.test('refused before any upgrade; the upstream sees nothing', async (t) => {
    const cases: Array<[string, string, Record<string, string>, number, string]> = [
      ['no token', '/ws/x', {}, 401, 'JOTGATE_TOKEN_MISSING'],
      ['expired token', '/ws/x', { authorization: `Bearer ${mint({ payload: claims({ iat: now() - 60, nbf: now() - 60, exp: now() - 1 }) })}` }, 401, 'JOTGATE_TOKEN_EXPIRED'],
      ['missing role', '/admin-ws/x', { authorization: `Bearer ${user('alice')}` }, 403, 'JOTGATE_FORBIDDEN'],
      ['two tokens', `/ws/x?access_token=${user('alice')}`, { authorization: `Bearer ${user('alice')}` }, 401, 'JOTGATE_TOKEN_AMBIGUOUS'],
      ['cookie token from a foreign page (cross-site WebSocket hijacking)', '/ws/x', { cookie: `jg=${user('alice')}`, origin: 'https://evil.example' }, 403, 'JOTGATE_CSRF'],
      ['a route without websocket: true', '/http/x', { authorization: `Bearer ${user('alice')}` }, 400, 'JOTGATE_BAD_REQUEST'],
      ['no route', '/nowhere', {}, 404, 'JOTGATE_ROUTE_NOT_FOUND']
    ]
    for (const [label, path, headers, status, code] of cases) {
      const res = await open(ws(a, path), { headers })
      t.equal(res.ws, undefined, `${label}: not upgraded`)
      t.equal(res.status, status, `${label}: ${status}`)
      t.equal(res.body?.code, code, `${label}: ${code}`)
    }
    const missing = await open(ws(a, '/ws/x'))
    t.equal(missing.headers?.['www-authenticate'], 'Bearer realm="jotgate"', 'RFC 6750 challenge on the raw socket too')

    const revoked = user('alice')
    const { jti, exp } = JSON.parse(Buffer.from(revoked.split('.')[1]!, 'base64url').toString()) as { jti: string, exp: number }
    t.equal((await fetch(`${b.adminUrl}/revocations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jti, exp }) })).status, 201)
    const res = await open(ws(a, '/ws/x'), { headers: { authorization: `Bearer ${revoked}` } })
    t.equal(res.body?.code, 'JOTGATE_TOKEN_REVOKED', 'revoked on the other instance: 401')

    // Step 1 applies to upgrades: `/open/../ws` is `/ws`, never the open route.
    t.equal((await rawUpgrade(a.url, '/open/%2e%2e/ws/x')).status, 401, 'dot segments resolved before matching')
    t.equal((await rawUpgrade(a.url, '/open/..%2fws/x')).status, 400, 'an encoded slash refused')
    t.equal((await rawUpgrade(a.url, '/ws/x', 'Sec-WebSocket-Protocol: a b\r\n')).status, 400, 'a malformed handshake is ours to refuse')
    t.equal(up.handshakes.length, 0, 'the upstream accepted no WebSocket')
    t.equal(up.requests.length, 0, 'nor saw any request')
  })

  t.test('identity headers reach the upstream; frames flow both ways', async (t) => {
    const before = up.handshakes.length
    const { ws: client } = await open(ws(a, `/ws/room?x=1&access_token=${user('alice', { roles: ['user', 'ops'] })}`), {
      headers: { 'x-user-id': 'mallory', x_user_roles: 'admin', cookie: 'theme=dark' },
      protocols: ['chat.v1', 'chat.v2']
    })
    t.ok(client, 'upgraded')
    t.equal(client!.protocol, 'chat.v2', "the upstream's subprotocol choice reaches the client")
    const hs = up.handshakes[before]!
    t.equal(hs.url, '/socket/room?x=1', 'rewritten path; the query token removed')
    t.equal(hs.headers['x-user-id'], 'alice', 'identity from the token, not the forged header')
    t.equal(hs.headers['x-user-roles'], 'user,ops')
    t.equal(hs.headers.x_user_roles, undefined, 'underscore alias stripped')
    t.equal(hs.headers.authorization, undefined)
    t.equal(hs.headers.cookie, 'theme=dark')
    t.equal(hs.headers['x-forwarded-for'], '127.0.0.1')
    t.match(hs.headers['x-request-id'], /^[0-9a-f-]{36}$/)

    client!.send('hello')
    const echo = await message(client!)
    t.equal(String(echo.data), 'echo:hello', 'text: client -> upstream -> client')
    t.equal(echo.binary, false)
    client!.send(Buffer.from([0, 1, 2, 255]))
    const bin = await message(client!)
    t.same([...bin.data], [0, 1, 2, 255], 'binary frames intact')
    t.equal(bin.binary, true)

    const end = closed(client!)
    client!.send('close-me')
    const { code, reason } = await end
    t.equal(code, 4321, "the upstream's close code reaches the client")
    t.equal(reason, 'bye')

    const { ws: cookieClient } = await open(ws(a, '/ws/c'), { headers: { cookie: `jg=${user('alice')}; k=v`, origin: new URL(a.url).origin } })
    t.ok(cookieClient, 'a same-origin cookie token upgrades')
    t.equal(up.handshakes.at(-1)!.headers.cookie, 'k=v', 'the token cookie is not forwarded')
    const upstreamSide = up.sockets.at(-1)!
    const upClosed = new Promise<number>((resolve) => upstreamSide.once('close', (c) => resolve(c)))
    cookieClient!.close(1000, 'done')
    t.equal(await upClosed, 1000, "the client's close reaches the upstream")
  })

  t.test('upstream failures', async (t) => {
    const down = await open(ws(a, '/down'))
    t.equal(down.status, 502)
    t.equal(down.body?.code, 'JOTGATE_UPSTREAM_UNAVAILABLE')
    const rejected = await open(ws(a, '/reject/x'))
    t.equal(rejected.status, 409, "the upstream's refusal passed back as it came")
    t.same(rejected.body, { why: 'upstream says no' })
    t.equal(rejected.headers?.['x-upstream'], 'ws')
  })

  t.test('an upgrade to anything but WebSocket is served as the ordinary request it is', async (t) => {
    const { hostname, port } = new URL(a.url)
    const text = await new Promise<string>((resolve) => {
      const s = tcp(Number(port), hostname, () => s.write(`GET /http/x HTTP/1.1\r\nHost: ${hostname}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nAuthorization: Bearer ${user('alice')}\r\n\r\n`))
      let out = ''
      s.on('data', (c: Buffer) => { out += String(c) })
      s.on('end', () => resolve(out))
    })
    t.match(text, /^HTTP\/1\.1 200 /, '200, like curl --http2 against an HTTP/1.1 server expects')
    t.equal(up.requests.at(-1)?.headers['x-user-id'], 'alice')
    t.equal(up.requests.at(-1)?.headers.upgrade, undefined, 'Upgrade not forwarded')
  })

  t.test('closed with 4001 when the token expires', async (t) => {
    const exp = now() + 3
    const { ws: client } = await open(ws(a, '/ws/x'), { headers: { authorization: `Bearer ${user('erin', { exp })}` } })
    const { code, at } = await closed(client!)
    t.equal(code, 4001)
    const late = at - exp * 1000
    t.ok(late >= -50 && late < 1000, `closed ${late} ms after exp`)
    t.comment(`expiry: closed ${late} ms after exp`)
  })

  t.test('closed with 4003 within 2 s after a revocation on another instance', async (t) => {
    const bystander = await open(ws(a, '/ws/x'), { headers: { authorization: `Bearer ${user('zed')}` } })
    const revocations: Array<[string, (token: string) => Promise<Response>]> = [
      ['admin revocation of the session', async (token) => {
        const { sid } = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sid: string }
        return fetch(`${b.adminUrl}/revocations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sid }) })
      }],
      ['logout', (token) => fetch(`${b.url}/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })],
      ['logout-all with another token of the subject', (_token) => fetch(`${b.url}/auth/logout-all`, { method: 'POST', headers: { authorization: `Bearer ${user('dave')}` } })]
    ]
    for (const [label, revoke] of revocations) {
      const token = label.startsWith('logout-all') ? user('dave') : user(`sub-${label.length}`)
      const { ws: client } = await open(ws(a, '/ws/x'), { headers: { authorization: `Bearer ${token}` } })
      const upstreamSide = up.sockets.at(-1)!
      const upClosed = new Promise<number>((resolve) => upstreamSide.once('close', (c) => resolve(c)))
      const end = closed(client!)
      // A moment so the socket is not closed by a sweep that merely started late.
      await new Promise((resolve) => setTimeout(resolve, 300))
      const res = await revoke(token)
      const returned = Date.now()
      t.ok(res.status === 201 || res.status === 204, `${label}: revocation accepted (${res.status})`)
      const { code, at } = await end
      t.equal(code, 4003, `${label}: 4003`)
      t.ok(at - returned < 2000, `${label}: closed ${at - returned} ms after the call returned`)
      t.comment(`${label}: closed ${at - returned} ms after the revocation call returned`)
      t.equal(await upClosed, 4003, `${label}: the upstream connection closed too`)
    }
    t.equal(bystander.ws!.readyState, WebSocket.OPEN, 'a socket of another token stays open')
    t.equal(await metric(a, 'jotgate_websocket_closed_total', { code: '4003' }), 3, 'the three closes are counted by close code')
    t.equal(await metric(a, 'jotgate_websocket_closed_total', { code: '4001' }), 1, 'and the expiry before them')
    const openBefore = await metric(a, 'jotgate_websocket_sessions')
    t.ok(openBefore !== undefined && openBefore >= 1, `open sockets gauge: ${openBefore}`)
    bystander.ws!.close()
    await closed(bystander.ws!)
    let openAfter = await metric(a, 'jotgate_websocket_sessions')
    for (let i = 0; i < 50 && openAfter !== openBefore! - 1; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20))
      openAfter = await metric(a, 'jotgate_websocket_sessions')
    }
    t.equal(openAfter, openBefore! - 1, 'the gauge drops when the client closes')
  })

  t.test('shutdown closes open sockets with 1001', async (t) => {
    const c = await startGateway({ name: 'websocket-shutdown', config: { ...config, store: { ...config.store, keyPrefix: uniquePrefix('ws-shutdown') } } })
    const { ws: client } = await open(ws(c, '/open/x'))
    const end = closed(client!)
    const started = Date.now()
    await c.close()
    t.equal((await end).code, 1001)
    t.ok(Date.now() - started < 3000, `close took ${Date.now() - started} ms`)
  })
})

t.test('store down with onError: deny closes sockets with 1013', async (t) => {
  const redis = await startRedisServer()
  const up = await startWsUpstream()
  const gw = await startGateway({
    name: 'websocket-store',
    config: { store: { type: 'redis', url: redis.url, keyPrefix: uniquePrefix('ws-store') }, routes: [{ path: '/', upstream: up.url, websocket: true }] }
  })
  t.teardown(async () => { await gw.close(); await up.close(); await redis.stop() })
  const { ws: client } = await open(ws(gw, '/x'), { headers: { authorization: `Bearer ${mint()}` } })
  t.ok(client, 'upgraded while the store answers')
  const end = closed(client!)
  await redis.stop()
  const stopped = Date.now()
  const { code, at } = await end
  t.equal(code, 1013, 'try again later: the token can no longer be checked')
  t.ok(at - stopped < 2500, `closed ${at - stopped} ms after the store went away`)
})

t.test('a reload closes, with 1008, the sockets the new config no longer admits', async (t) => {
  const up = await startWsUpstream()
  const store = { type: 'redis', url: REDIS_URL, keyPrefix: uniquePrefix('ws-reload') }
  const before = [
    { path: '/gone', upstream: up.url, websocket: true },
    { path: '/staff', upstream: up.url, websocket: true, require: { roles: ['staff'] } },
    { path: '/http-now', upstream: up.url, websocket: true },
    { path: '/keep', upstream: up.url, websocket: true },
    { path: '/open', upstream: up.url, websocket: true, auth: 'none' }
  ]
  const after = [
    { path: '/staff', upstream: up.url, websocket: true, require: { roles: ['admin'] } },
    { path: '/http-now', upstream: up.url },
    { path: '/keep', upstream: up.url, websocket: true },
    { path: '/open', upstream: up.url, websocket: true, auth: 'none' }
  ]
  const gw = await startGateway({ name: 'ws-reload', config: { store, routes: before } })
  t.teardown(async () => { await gw.close(); await up.close() })
  const token = mint({ payload: claims({ sub: 'ana', roles: ['staff'] }) })
  const sockets: Record<string, WebSocket> = {}
  for (const path of ['/gone', '/staff', '/http-now', '/keep', '/open']) {
    const { ws: client } = await open(ws(gw, `${path}/x`), { headers: { authorization: `Bearer ${token}` } })
    t.ok(client, `${path}: open`)
    sockets[path] = client!
  }
  const ends = Object.fromEntries(Object.entries(sockets).map(([path, s]) => [path, closed(s)]))
  await gw.gateway.reload(loadConfigObject(baseConfig('ws-reload', { store, routes: after }), keyDir))
  for (const path of ['/gone', '/staff', '/http-now']) {
    t.equal((await ends[path]!).code, 1008, `${path}: closed with 1008`)
  }
  t.equal(sockets['/keep']!.readyState, WebSocket.OPEN, '/keep: still admitted, still open')
  t.equal(sockets['/open']!.readyState, WebSocket.OPEN, '/open: still open')
  const echo = message(sockets['/keep']!)
  sockets['/keep']!.send('still here')
  t.equal(String((await echo).data).includes('still here'), true, 'frames still flow on the kept socket')
  t.equal(await metric(gw, 'jotgate_websocket_closed_total', { code: '1008' }), 3, 'counted by close code')
  sockets['/keep']!.close()
  sockets['/open']!.close()
})

