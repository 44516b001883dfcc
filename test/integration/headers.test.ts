/**
 * The Authorization header, header size, claim values as headers, and the
 * upstream leg (CONTRACT section 3, steps 3, 7 and 8): refusals reach no
 * upstream, upstream failures map to 502/504, answers pass back unchanged
 * and bodies stream both ways.
 */
import t from 'tap'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { startUpstream, type SeenRequest, type Upstream } from '../helpers/upstream.js'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { freePort } from '../helpers/redis.js'
import { claims, mint, rawRequest, rawText, type RawResponse } from '../helpers/zoo.js'

type TapTest = Parameters<Parameters<typeof t.test>[0]>[0]
type HeaderList = Array<readonly [string, string]>

const INVALID_TOKEN = 'Bearer realm="jotgate", error="invalid_token"'

const up = await startUpstream()
const closedPort = await freePort()
const gw = await startGateway({
  name: 'headers',
  config: {
    server: { host: '127.0.0.1', port: 0, maxHeaderBytes: 2048, upstreamTimeout: '1s' },
    routes: [
      { path: '/down', upstream: `http://127.0.0.1:${closedPort}`, auth: 'none' },
      { path: '/open', upstream: up.url, auth: 'none' },
      { path: '/', upstream: up.url }
    ]
  }
})
t.teardown(async () => { await gw.close(); await up.close() })

const token = mint({ payload: claims({ sub: 'alice' }) })

async function send (g: TestGateway, target: string, headers: HeaderList, method = 'GET', body = ''): Promise<RawResponse> {
  return rawRequest(g.url, rawText(target, headers, method, body))
}

async function refused (t: TapTest, u: Upstream, target: string, headers: HeaderList, status: number, code: string, label: string): Promise<RawResponse> {
  const before = u.seen.length
  const res = await send(gw, target, headers)
  t.equal(res.status, status, `${label}: status`)
  t.equal(res.json?.statusCode, status, `${label}: statusCode`)
  t.equal(res.json?.code, code, `${label}: code`)
  t.equal(u.seen.length, before, `${label}: upstream saw nothing`)
  return res
}

async function through (t: TapTest, u: Upstream, target: string, headers: HeaderList, label: string): Promise<SeenRequest> {
  const before = u.seen.length
  const res = await send(gw, target, headers)
  t.equal(res.status, 200, `${label}: status (${res.body.slice(0, 100)})`)
  t.equal(u.seen.length, before + 1, `${label}: upstream saw it once`)
  return u.seen.at(-1)!
}

t.test('the Authorization header', async (t) => {
  const cases: Array<[string, HeaderList, string]> = [
    ['two Authorization headers', [['Authorization', `Bearer ${token}`], ['Authorization', `Bearer ${token}`]], 'JOTGATE_TOKEN_AMBIGUOUS'],
    ['two Authorization headers, mixed case', [['authorization', `Bearer ${token}`], ['AUTHORIZATION', 'Bearer x.y.z']], 'JOTGATE_TOKEN_AMBIGUOUS'],
    ['a good and a bad Authorization header', [['Authorization', 'Basic Zm9vOmJhcg=='], ['Authorization', `Bearer ${token}`]], 'JOTGATE_TOKEN_AMBIGUOUS'],
    ['two tokens in one header', [['Authorization', `Bearer ${token}, Bearer ${token}`]], 'JOTGATE_TOKEN_AMBIGUOUS'],
    ['Basic scheme', [['Authorization', 'Basic Zm9vOmJhcg==']], 'JOTGATE_TOKEN_MALFORMED'],
    ['token without scheme', [['Authorization', token]], 'JOTGATE_TOKEN_MALFORMED'],
    ['Bearer with a space inside the token', [['Authorization', `Bearer ${token.slice(0, 20)} ${token.slice(20)}`]], 'JOTGATE_TOKEN_MALFORMED'],
    ['Bearer with a tab before the token', [['Authorization', `Bearer\t${token}`]], 'JOTGATE_TOKEN_MALFORMED']
  ]
  for (const [label, headers, code] of cases) {
    const res = await refused(t, up, '/x', headers, 401, code, label)
    t.equal(res.headers['www-authenticate']?.[0], INVALID_TOKEN, `${label}: challenge`)
  }
  const empty = await refused(t, up, '/x', [['Authorization', 'Bearer']], 401, 'JOTGATE_TOKEN_MISSING', 'Bearer without token')
  t.equal(empty.headers['www-authenticate']?.[0], 'Bearer realm="jotgate"', 'no error attribute without a token')

  // RFC 7235 section 2.1: the scheme is case-insensitive.
  for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
    const seen = await through(t, up, '/x', [['Authorization', `${scheme} ${token}`]], `scheme ${scheme}`)
    t.equal(seen.headers['x-user-id'], 'alice', `${scheme}: identity forwarded`)
  }
  await through(t, up, '/x', [['Authorization', `Bearer  ${token} `]], 'extra spaces around the token')
})

t.test('request headers over server.maxHeaderBytes: 431', async (t) => {
  const before = up.seen.length
  const res = await send(gw, '/open/x', [['X-Big', 'a'.repeat(4096)]])
  t.equal(res.status, 431)
  t.equal(res.json?.statusCode, 431)
  t.equal(res.json?.code, 'JOTGATE_HEADERS_TOO_LARGE')
  const many = await send(gw, '/open/x', Array.from({ length: 40 }, (_, i) => [`X-H${i}`, 'v'.repeat(80)] as const))
  t.equal(many.status, 431, 'many small headers add up')
  t.equal(many.json?.code, 'JOTGATE_HEADERS_TOO_LARGE')
  t.equal(up.seen.length, before, 'upstream saw nothing')
  // Positive control: 1 KiB of headers passes, with a token.
  const seen = await through(t, up, '/x', [['X-Big', 'a'.repeat(1024)], ['Authorization', `Bearer ${token}`]], '1 KiB header')
  t.equal(seen.headers['x-big'], 'a'.repeat(1024))
})

t.test('requests the HTTP parser refuses get our JSON refusal and reach nothing', async (t) => {
  const before = up.seen.length
  const smuggle = 'POST /open/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n'
  const bad: Array<[string, string]> = [
    ['Content-Length with Transfer-Encoding (request smuggling)', smuggle],
    ['two different Content-Length', 'POST /open/x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab'],
    ['space before the colon', 'GET /open/x HTTP/1.1\r\nHost: a\r\nX-User-Id : evil\r\n\r\n'],
    ['bare LF in a header value', 'GET /open/x HTTP/1.1\r\nHost: a\r\nX-A: 1\nX-User-Id: evil\r\n\r\n']
  ]
  for (const [label, text] of bad) {
    const res = await rawRequest(gw.url, text)
    t.equal(res.status, 400, `${label}: 400`)
    t.equal(res.json?.statusCode, 400, `${label}: statusCode`)
    t.equal(res.json?.code, 'JOTGATE_BAD_REQUEST', `${label}: code`)
  }
  const hosts = await rawRequest(gw.url, 'GET /open/x HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\nConnection: close\r\n\r\n')
  t.equal(hosts.status, 400, 'two Host headers: 400 (RFC 9112 section 3.2)')
  t.equal(hosts.json?.code, 'JOTGATE_BAD_REQUEST')
  t.equal(up.seen.length, before, 'upstream saw nothing')
  await through(t, up, '/open/x', [], 'positive control')
})

t.test('hop-by-hop request headers are not forwarded and break nothing', async (t) => {
  const cases: Array<[string, HeaderList]> = [
    ['Keep-Alive', [['Keep-Alive', 'timeout=5']]],
    ['Upgrade without Connection: upgrade', [['Upgrade', 'h2c']]],
    ['Proxy-Connection', [['Proxy-Connection', 'keep-alive']]],
    ['TE', [['TE', 'trailers']]]
  ]
  for (const [label, headers] of cases) {
    const seen = await through(t, up, '/x', [...headers, ['Authorization', `Bearer ${token}`]], label)
    t.equal(seen.headers[headers[0]![0].toLowerCase()], undefined, `${label}: not forwarded`)
    t.equal(seen.headers['x-user-id'], 'alice', `${label}: identity still set`)
  }
  // curl sends Expect: 100-continue for bodies over 1 KiB.
  const body = 'x'.repeat(2048)
  const before = up.seen.length
  const res = await send(gw, '/x', [['Authorization', `Bearer ${token}`], ['Expect', '100-continue']], 'POST', body)
  t.equal(res.status, 200, `Expect: 100-continue: 200 (${res.body.slice(0, 80)})`)
  t.equal(up.seen.length, before + 1)
  t.equal(up.seen.at(-1)?.body, body, 'body intact')
  t.equal(up.seen.at(-1)?.headers.expect, undefined, 'Expect answered here, not forwarded')
})

t.test('claim values that could break a header are refused', async (t) => {
  const unsafe: Array<[string, Record<string, unknown>]> = [
    ['CR LF in sub', { sub: 'a\r\nX-Evil: 1' }],
    ['LF in sub', { sub: 'a\nX-Evil: 1' }],
    ['NUL in sub', { sub: 'a\u0000b' }],
    ['DEL in sub', { sub: 'a\u007fb' }],
    ['CR LF in a role', { roles: ['user', 'x\r\nX-Evil: 1'] }],
    ['CR LF in azp', { azp: 'web\r\n\r\nGET / HTTP/1.1' }],
    ['lone surrogate in sub', { sub: 'a\ud800b' }]
  ]
  for (const [label, extra] of unsafe) {
    const bad = mint({ payload: claims(extra) })
    await refused(t, up, '/x', [['Authorization', `Bearer ${bad}`]], 400, 'JOTGATE_CLAIM_UNSAFE', label)
  }
  t.notOk(up.seen.some((s) => s.headers['x-evil'] !== undefined), 'no injected header ever reached the upstream')
  await through(t, up, '/x', [['Authorization', `Bearer ${token}`]], 'positive control')
})

t.test('non-ASCII claims go by the documented encoding', async (t) => {
  const zoe = mint({ payload: claims({ sub: 'Zo\u00eb', roles: ['a', 'Zo\u00eb'], azp: '\u96fb\u8a71' }) })
  const seen = await through(t, up, '/x', [['Authorization', `Bearer ${zoe}`]], 'Zoë')
  t.equal(seen.headers['x-user-id'], "utf-8''Zo%C3%AB", 'RFC 8187-style ext-value')
  t.equal(seen.headers['x-user-roles'], "utf-8''a%2CZo%C3%AB", 'joined, then encoded')
  t.equal(seen.headers['x-client-id'], "utf-8''%E9%9B%BB%E8%A9%B1")
  t.equal(decodeURIComponent(String(seen.headers['x-user-id']).slice("utf-8''".length)), 'Zo\u00eb', 'decodes back')
  // A plain ASCII value that merely looks encoded is encoded, so it stays unambiguous.
  const tricky = mint({ payload: claims({ sub: "utf-8''Zo%C3%AB" }) })
  const seen2 = await through(t, up, '/x', [['Authorization', `Bearer ${tricky}`]], 'prefix look-alike')
  t.equal(seen2.headers['x-user-id'], "utf-8''utf-8%27%27Zo%25C3%25AB")
})

t.test('upstream refusing connections: 502', async (t) => {
  const res = await send(gw, '/down/x', [])
  t.equal(res.status, 502)
  t.equal(res.json?.statusCode, 502)
  t.equal(res.json?.code, 'JOTGATE_UPSTREAM_UNAVAILABLE')
  await through(t, up, '/open/x', [], 'positive control on a live upstream')
})

t.test('upstream slower than upstreamTimeout: 504', async (t) => {
  up.handle((_req, res) => { setTimeout(() => { if (!res.destroyed) res.end('late') }, 2000) })
  t.teardown(() => up.handle(undefined))
  const started = Date.now()
  const res = await send(gw, '/open/slow', [])
  const took = Date.now() - started
  t.equal(res.status, 504)
  t.equal(res.json?.statusCode, 504)
  t.equal(res.json?.code, 'JOTGATE_UPSTREAM_TIMEOUT')
  t.ok(took >= 900 && took < 1900, `answered after about 1 s (${took} ms)`)
  up.handle(undefined)
  await through(t, up, '/open/fast', [], 'positive control')
})

t.test('an upstream 503 to a GET is passed back once, without retries', async (t) => {
  up.handle((_req, res) => { res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '0', 'x-upstream': 'busy' }); res.end('busy') })
  t.teardown(() => up.handle(undefined))
  const before = up.seen.length
  const res = await send(gw, '/open/busy', [])
  t.equal(res.status, 503)
  t.equal(res.body, 'busy', 'the upstream body, not a gateway refusal')
  t.equal(res.headers['x-upstream']?.[0], 'busy')
  t.equal(res.headers['retry-after']?.[0], '0')
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(up.seen.length, before + 1, 'the upstream saw exactly one request')
})

t.test('other upstream statuses and headers pass back unchanged', async (t) => {
  up.handle((_req, res) => { res.writeHead(418, { 'content-type': 'application/x-teapot', 'set-cookie': ['a=1', 'b=2'], 'x-request-id': 'upstream-id' }); res.end('short and stout') })
  t.teardown(() => up.handle(undefined))
  const res = await send(gw, '/x', [['Authorization', `Bearer ${token}`]])
  t.equal(res.status, 418)
  t.equal(res.body, 'short and stout')
  t.same(res.headers['set-cookie'], ['a=1', 'b=2'])
  t.equal(res.headers['content-type']?.[0], 'application/x-teapot')
})

t.test('a streamed upstream response arrives intact, as it streams', async (t) => {
  const parts = ['first-', 'second-', 'third-'.repeat(10000), 'last']
  let lastSentAt = 0
  up.handle((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' })
    let i = 0
    const next = () => {
      if (i === parts.length) { lastSentAt = Date.now(); res.end(); return }
      res.write(parts[i++])
      setTimeout(next, 200)
    }
    next()
  })
  t.teardown(() => up.handle(undefined))
  const { res, chunks } = await get(`${gw.url}/open/stream`)
  t.equal(res.statusCode, 200)
  const body = Buffer.concat(chunks.map((c) => c.data)).toString()
  t.equal(body, parts.join(''), 'body intact')
  t.ok(chunks[0]!.at < lastSentAt - 300, 'the first bytes arrived before the upstream finished')
})

t.test('a POST body streams to the upstream intact', async (t) => {
  let firstByteAt = 0
  const onRequest = (req: IncomingMessage) => { req.once('data', () => { firstByteAt ||= Date.now() }) }
  up.server.prependListener('request', onRequest)
  t.teardown(() => { up.server.removeListener('request', onRequest) })
  const pieces = Array.from({ length: 8 }, (_, i) => `${i}:`.padEnd(64 * 1024, String.fromCharCode(97 + i)))
  const before = up.seen.length
  let lastWrittenAt = 0
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = httpRequest(`${gw.url}/x`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' } }, resolve)
    req.on('error', reject)
    let i = 0
    const next = () => {
      if (i === pieces.length) { lastWrittenAt = Date.now(); req.end(); return }
      req.write(pieces[i++])
      setTimeout(next, 100)
    }
    next()
  })
  res.resume()
  await new Promise((resolve) => res.on('end', resolve))
  t.equal(res.statusCode, 200)
  t.equal(up.seen.length, before + 1)
  const seen = up.seen.at(-1)!
  t.equal(seen.method, 'POST')
  t.equal(seen.body.length, pieces.join('').length, 'same length')
  t.ok(seen.body === pieces.join(''), 'same bytes')
  t.equal(seen.headers['x-user-id'], 'alice')
  t.ok(firstByteAt > 0 && firstByteAt < lastWrittenAt, 'the upstream got bytes before the client finished sending')
  // A JSON body goes through byte for byte too (not re-serialized).
  const json = '{ "b": 1,   "a": [1, 2] }'
  const before2 = up.seen.length
  const resJson = await send(gw, '/open/json', [['Content-Type', 'application/json']], 'POST', json)
  t.equal(resJson.status, 200)
  t.equal(up.seen.length, before2 + 1)
  t.equal(up.seen.at(-1)!.body, json, 'JSON body byte for byte')
})

/** GET with the arrival time of every chunk. */
async function get (url: string): Promise<{ res: IncomingMessage, chunks: Array<{ at: number, data: Buffer }> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, (res) => {
      const chunks: Array<{ at: number, data: Buffer }> = []
      res.on('data', (data: Buffer) => chunks.push({ at: Date.now(), data }))
      res.on('end', () => resolve({ res, chunks }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}
