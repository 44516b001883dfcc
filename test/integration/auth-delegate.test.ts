/**
 * auth.delegate (issue 3): login posts the credentials to a real local HTTP
 * server; 2xx maps its JSON answer to sub and claims, 4xx is a failed
 * login, 5xx, a timeout or an unusable answer is 503.
 */
import t from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { authGateway, call, decode, type Pair } from './auth-kit.js'

interface Seen { method: string, url: string, headers: IncomingMessage['headers'], body: string }

t.test('delegated login', async (t) => {
  const seen: Seen[] = []
  const behaviours: Record<string, (res: ServerResponse) => void> = {
    alice: (res) => json(res, 200, { user: { id: 42, email: 'alice@legacy.test', iss: 'https://evil.test' }, groups: ['admin', 'ops'], sid: 'forged' }),
    bob: (res) => json(res, 201, { user: { id: 'u-bob' } }),
    nope: (res) => json(res, 401, { error: 'bad credentials' }),
    forbidden: (res) => json(res, 403, {}),
    missing: (res) => { res.statusCode = 404; res.end() },
    teapot: (res) => { res.statusCode = 418; res.end('short and stout') },
    boom: (res) => json(res, 500, { error: 'db down' }),
    unavailable: (res) => { res.statusCode = 503; res.end() },
    slow: (res) => { setTimeout(() => json(res, 200, { user: { id: 'slow' } }), 1500).unref() },
    slowbody: (res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.write('{"user":'); setTimeout(() => res.end('{"id":"x"}}'), 1500).unref() },
    notjson: (res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<html>welcome</html>') },
    nosub: (res) => json(res, 200, { user: { email: 'x@y' } }),
    huge: (res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify({ user: { id: 'h' }, pad: 'x'.repeat(2 * 1024 * 1024) })) },
    hugechunked: (res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.write('{"user":{"id":"h"},"pad":"'); for (let i = 0; i < 40; i++) res.write('x'.repeat(65536)); res.end('"}') },
    emptysub: (res) => json(res, 200, { user: { id: '' } }),
    objsub: (res) => json(res, 200, { user: { id: { nested: true } } }),
    redirect: (res) => { res.writeHead(302, { location: '/elsewhere' }); res.end() }
  }
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body })
      let username = ''
      try { username = (JSON.parse(body) as { username: string }).username } catch {}
      const behaviour = behaviours[username] ?? ((r: ServerResponse) => json(r, 401, {}))
      behaviour(res)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const loginUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/login`

  const gw = await authGateway({
    name: 'auth-delegate',
    auth: {
      delegate: { url: loginUrl, timeout: '400ms', subject: 'user.id', claims: { email: 'user.email', roles: 'groups', iss: 'user.iss', sid: 'sid', missing: 'user.nothing' } },
      rateLimit: { max: 1000 }
    }
  })
  t.teardown(async () => {
    await gw.close()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  const attempt = (username: string, password = 'secret pw', form = false) =>
    call(gw.url, '/auth/login', { username, password }, { form })

  t.test('2xx: the JSON answer becomes sub and claims', async (t) => {
    const before = seen.length
    const res = await attempt('alice', 'p@ss w0rd&=')
    t.equal(res.status, 200)
    t.equal(seen.length, before + 1, 'the login service was called once')
    const call0 = seen.at(-1)!
    t.equal(call0.method, 'POST')
    t.equal(call0.url, '/api/login')
    t.match(call0.headers['content-type'], /^application\/json/)
    t.same(JSON.parse(call0.body), { username: 'alice', password: 'p@ss w0rd&=' }, 'the credentials, as JSON')
    const pair = res.body as unknown as Pair
    t.equal(pair.token_type, 'Bearer')
    const { payload } = decode(pair.access_token)
    t.equal(payload.sub, '42', 'a numeric id becomes a string sub')
    t.equal(payload.email, 'alice@legacy.test')
    t.same(payload.roles, ['admin', 'ops'])
    t.equal(payload.iss, 'https://jotgate.test', 'a mapped claim cannot replace iss')
    t.not(payload.sid, 'forged', 'nor sid')
    t.notOk('missing' in payload, 'an absent field maps to no claim')
  })

  t.test('a form body is passed on as the same JSON; 201 counts as success', async (t) => {
    const res = await attempt('bob', 'form pw', true)
    t.equal(res.status, 200)
    t.same(JSON.parse(seen.at(-1)!.body), { username: 'bob', password: 'form pw' })
    t.equal(decode((res.body as unknown as Pair).access_token).payload.sub, 'u-bob')
  })

  t.test('4xx: 401 JOTGATE_LOGIN_FAILED', async (t) => {
    for (const username of ['nope', 'forbidden', 'missing', 'teapot', 'unknown-user']) {
      const res = await attempt(username)
      t.equal(res.status, 401, username)
      t.equal(res.body?.code, 'JOTGATE_LOGIN_FAILED')
    }
  })

  t.test('5xx, timeout, unusable answers: 503 JOTGATE_CREDENTIALS_UNAVAILABLE', async (t) => {
    for (const username of ['boom', 'unavailable', 'slow', 'slowbody', 'notjson', 'huge', 'hugechunked', 'nosub', 'emptysub', 'objsub', 'redirect']) {
      const started = Date.now()
      const res = await attempt(username)
      const took = Date.now() - started
      t.equal(res.status, 503, username)
      t.equal(res.body?.code, 'JOTGATE_CREDENTIALS_UNAVAILABLE')
      if (username.startsWith('slow')) t.ok(took < 1400, `${username}: gave up after ${took} ms (timeout 400ms)`)
    }
  })

  t.test('an unreachable login service: 503', async (t) => {
    const dead = await authGateway({
      name: 'auth-delegate-dead',
      auth: { delegate: { url: 'http://127.0.0.1:1/login', timeout: '1s' }, rateLimit: { max: 1000 } }
    })
    t.teardown(() => dead.close())
    const res = await call(dead.url, '/auth/login', { username: 'a', password: 'b' })
    t.equal(res.status, 503)
    t.equal(res.body?.code, 'JOTGATE_CREDENTIALS_UNAVAILABLE')
  })
})

function json (res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}
