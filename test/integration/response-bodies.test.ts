/**
 * Upstream answers on their way back: small ones with a Content-Length
 * are read whole and sent in one write, everything else streams. Either
 * way the client gets the upstream's status, fields and bytes unchanged.
 */
import t, { type Test } from 'tap'
import { request, type IncomingMessage } from 'node:http'
import { createServer as createNetServer, type AddressInfo } from 'node:net'
import { once } from 'node:events'
import { startUpstream } from '../helpers/upstream.js'
import { startGateway } from '../helpers/gateway.js'
import { send } from '../helpers/http.js'
import { mint, claims } from '../helpers/zoo.js'
import { BUFFERED_BODY_BYTES } from '../../src/proxy/register.js'

const token = mint({ payload: claims({ sub: 'alice' }) })
const auth: Array<[string, string]> = [['Authorization', `Bearer ${token}`]]

async function setup (t: Test) {
  const up = await startUpstream()
  const gw = await startGateway({ name: 'bodies', config: { routes: [{ path: '/', upstream: up.url }] } })
  t.teardown(async () => { await gw.close(); await up.close() })
  return { up, gw }
}

/** A body of `n` bytes that differs at every offset a chunk boundary could fall on. */
function bytes (n: number): Buffer {
  const out = Buffer.alloc(n)
  for (let i = 0; i < n; i++) out[i] = (i * 31 + (i >> 8)) & 0xff
  return out
}

t.test('answers at, under and over the buffering size arrive with the upstream fields and bytes unchanged', async (t) => {
  const { up, gw } = await setup(t)
  for (const size of [1, 1000, BUFFERED_BODY_BYTES, BUFFERED_BODY_BYTES + 1, 1024 * 1024]) {
    const body = bytes(size)
    up.handle((_req, res) => {
      res.writeHead(201, { 'content-type': 'application/octet-stream', 'content-length': String(size), 'x-upstream': 'bytes', 'set-cookie': ['a=1', 'b=2'] })
      res.end(body)
    })
    const res = await fetch(`${gw.url}/blob`, { headers: { authorization: `Bearer ${token}` } })
    t.equal(res.status, 201, `${size}: status`)
    t.equal(res.headers.get('content-length'), String(size), `${size}: length`)
    t.equal(res.headers.get('content-type'), 'application/octet-stream', `${size}: type`)
    t.equal(res.headers.get('x-upstream'), 'bytes', `${size}: upstream field`)
    t.same(res.headers.getSetCookie(), ['a=1', 'b=2'], `${size}: both cookies`)
    t.ok(Buffer.from(await res.arrayBuffer()).equals(body), `${size}: body byte for byte`)
  }
})

t.test('a chunked answer and a large one stream: the client reads their start before the upstream has finished', async (t) => {
  const { up, gw } = await setup(t)
  for (const [label, headers, first] of [
    ['chunked', { 'content-type': 'text/event-stream' }, Buffer.from('data: one\n\n')],
    ['over the buffering size', { 'content-length': String(4 * BUFFERED_BODY_BYTES) }, bytes(2 * BUFFERED_BODY_BYTES)]
  ] as const) {
    let finish: () => void = () => {}
    const released = new Promise<void>((resolve) => { finish = resolve })
    up.handle((_req, res) => {
      res.writeHead(200, headers)
      res.write(first)
      // The rest only once the client has seen the start: a gateway that
      // waited for the whole body would never send anything.
      void released.then(() => res.end(label === 'chunked' ? 'data: two\n\n' : bytes(2 * BUFFERED_BODY_BYTES)))
    })
    const req = request(`${gw.url}/stream`, { headers: { authorization: `Bearer ${token}` }, agent: false })
    req.end()
    const [res] = await once(req, 'response') as [IncomingMessage]
    t.equal(res.statusCode, 200, label)
    const [chunk] = await Promise.race([
      once(res, 'data') as Promise<[Buffer]>,
      new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error(`${label}: nothing arrived before the upstream finished`)), 3000))
    ])
    t.ok(chunk.length > 0, `${label}: the start arrived while the upstream was still sending`)
    finish()
    let total = chunk.length
    for await (const more of res) total += (more as Buffer).length
    t.equal(total, label === 'chunked' ? 22 : 4 * BUFFERED_BODY_BYTES, `${label}: every byte`)
  }
})

t.test('an upstream that cuts off a small answer: the client never gets it as if it were whole', async (t) => {
  // Headers, 10 of the 100 announced bytes and the end of the connection, in one go.
  const cutter = createNetServer((socket) => {
    socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\nX-Upstream: cut\r\n\r\n0123456789'))
  })
  await new Promise<void>((resolve) => cutter.listen(0, '127.0.0.1', resolve))
  const up = await startUpstream()
  const gw = await startGateway({
    name: 'bodies',
    config: { routes: [{ path: '/cut', upstream: `http://127.0.0.1:${(cutter.address() as AddressInfo).port}` }, { path: '/', upstream: up.url }] }
  })
  t.teardown(async () => { await gw.close(); await up.close(); cutter.close() })
  for (let i = 0; i < 5; i++) {
    const outcome = await new Promise<{ status: number | undefined, bytes: number, complete: boolean, text: string }>((resolve) => {
      const req = request(`${gw.url}/cut`, { headers: { authorization: `Bearer ${token}` }, agent: false })
      let status: number | undefined
      let text = ''
      req.on('response', (res) => {
        status = res.statusCode
        res.on('data', (c: Buffer) => { text += c.toString() })
        res.on('end', () => resolve({ status, bytes: Buffer.byteLength(text), complete: res.complete, text }))
        res.on('aborted', () => resolve({ status, bytes: Buffer.byteLength(text), complete: false, text }))
      })
      req.on('error', () => resolve({ status, bytes: Buffer.byteLength(text), complete: false, text }))
      req.end()
    })
    // Either the documented 502 (the cut came before anything was sent) or
    // the upstream's start and a broken connection, never a whole answer.
    if (outcome.status === 502) t.match(JSON.parse(outcome.text), { code: 'JOTGATE_UPSTREAM_UNAVAILABLE' })
    else t.ok(outcome.status === 200 && !outcome.complete && outcome.bytes < 100, `cut-off answer passed on as cut off: ${JSON.stringify(outcome)}`)
  }
  // The gateway goes on serving.
  t.equal((await send(gw.url, 'GET', '/after', auth)).status, 200)
})

t.test('a small answer still arriving streams: the client reads its start before the upstream sends the rest', async (t) => {
  const { up, gw } = await setup(t)
  let release: () => void = () => {}
  const released = new Promise<void>((resolve) => { release = resolve })
  up.handle((_req, res) => {
    res.writeHead(200, { 'content-length': '10', 'x-upstream': 'slow' })
    res.write('01234')
    void released.then(() => res.end('56789'))
  })
  const req = request(`${gw.url}/slow`, { headers: { authorization: `Bearer ${token}` }, agent: false })
  req.end()
  const [res] = await once(req, 'response') as [IncomingMessage]
  t.equal(res.headers['x-upstream'], 'slow')
  t.equal(res.headers['content-length'], '10')
  const [first] = await Promise.race([
    once(res, 'data') as Promise<[Buffer]>,
    new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error('nothing arrived before the upstream finished')), 3000))
  ])
  t.equal(first.toString(), '01234')
  release()
  let rest = ''
  for await (const more of res) rest += (more as Buffer).toString()
  t.equal(rest, '56789')
})

t.test('HEAD, 204 and 304 answers keep the upstream fields, Content-Length included, and carry no body', async (t) => {
  const { up, gw } = await setup(t)
  up.handle((req, res) => {
    if (req.method === 'HEAD') res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5000' })
    else if (req.method === 'DELETE') res.writeHead(204, { 'x-upstream': 'gone' })
    // RFC 9110 section 8.6 allows it: the length a 200 would have had.
    else res.writeHead(304, { etag: '"v1"', 'content-length': '5000' })
    res.end()
  })
  const deleted = await send(gw.url, 'DELETE', '/doc', auth)
  t.equal(deleted.status, 204)
  t.equal(deleted.headers['x-upstream'], 'gone')
  t.equal(deleted.text, '')
  const head = await send(gw.url, 'HEAD', '/doc', auth)
  t.equal(head.status, 200)
  t.equal(head.headers['content-length'], '5000', 'HEAD: the length of what GET would send')
  t.equal(head.text, '')
  const notModified = await send(gw.url, 'GET', '/doc', [...auth, ['If-None-Match', '"v1"']])
  t.equal(notModified.status, 304)
  t.equal(notModified.headers.etag, '"v1"')
  t.equal(notModified.headers['content-length'], '5000', '304: not rewritten to 0')
  t.equal(notModified.text, '')
})

t.test('a client that leaves while a small answer is being read: the gateway goes on serving', async (t) => {
  const { up, gw } = await setup(t)
  let release: () => void = () => {}
  const released = new Promise<void>((resolve) => { release = resolve })
  up.handle((_req, res) => {
    res.writeHead(200, { 'content-length': '10' })
    res.write('01234')
    void released.then(() => res.end('56789'))
  })
  const req = request(`${gw.url}/slow`, { headers: { authorization: `Bearer ${token}` }, agent: false })
  req.on('error', () => {})
  req.end()
  // Wait until the upstream has been asked, then leave.
  while (up.seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 10))
  req.destroy()
  await new Promise((resolve) => setTimeout(resolve, 50))
  release()
  await new Promise((resolve) => setTimeout(resolve, 50))
  up.handle(undefined)
  const after = await send(gw.url, 'GET', '/after', auth)
  t.equal(after.status, 200)
  t.equal(after.json?.url, '/after')
})
