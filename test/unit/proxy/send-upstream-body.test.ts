/**
 * How an upstream answer is handed to Fastify: one buffer when it is small
 * and already here, the stream otherwise, a 502 when it fails before
 * anything was sent. A real stream stands for undici's body; the reply
 * records what it was given.
 */
import t from 'tap'
import { PassThrough, Readable } from 'node:stream'
import { setImmediate as turn } from 'node:timers/promises'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { sendUpstreamBody, BUFFERED_BODY_BYTES } from '../../../src/proxy/register.js'
import { isGatewayError } from '../../../src/errors.js'

function fakeReply (headers: Record<string, string>) {
  const sent: unknown[] = []
  const reply = {
    getHeaders: () => ({ ...headers }),
    removeHeader: (name: string) => { delete headers[name] },
    send: (payload?: unknown) => {
      sent.push(payload)
      // As Fastify does with a stream it is given: its errors are handled there.
      if (payload instanceof Readable) payload.on('error', () => {})
      return reply
    }
  }
  return { reply: reply as unknown as FastifyReply, sent, headers }
}

const GET = { method: 'GET' } as FastifyRequest

t.test('a small answer that is all here goes as one buffer', async (t) => {
  const body = new PassThrough()
  const { reply, sent } = fakeReply({ 'content-length': '10' })
  sendUpstreamBody(GET, reply, { statusCode: 200, headers: { 'content-length': '10' }, stream: body })
  body.write('01234')
  body.end('56789')
  await turn()
  t.equal(sent.length, 1)
  t.ok(Buffer.isBuffer(sent[0]))
  t.equal(String(sent[0]), '0123456789')
  // The upstream connection failing after the last byte: the answer was whole, nothing else happens.
  body.destroy(new Error('late'))
  await turn()
  t.equal(sent.length, 1, 'no second answer, no uncaught error')
})

t.test('a small answer not all here in the tick after its headers goes as the stream, what came first at its head', async (t) => {
  const body = new PassThrough()
  const { reply, sent } = fakeReply({ 'content-length': '10' })
  sendUpstreamBody(GET, reply, { statusCode: 200, headers: { 'content-length': '10' }, stream: body })
  body.write('01234')
  await turn()
  await turn()
  t.equal(sent.length, 1)
  t.equal(sent[0], body, 'the stream itself')
  body.end('56789')
  let text = ''
  for await (const chunk of body) text += String(chunk)
  t.equal(text, '0123456789', 'nothing lost, nothing reordered')
})

t.test('an answer that fails before anything was sent: a 502 without the upstream fields', async (t) => {
  const body = new PassThrough()
  const { reply, sent, headers } = fakeReply({ 'content-length': '100', 'x-upstream': 'cut' })
  // Failed in the read that brought the headers: the error is already on its way.
  body.destroy(new Error('other side closed'))
  sendUpstreamBody(GET, reply, { statusCode: 200, headers: { 'content-length': '100' }, stream: body })
  await turn()
  await turn()
  t.equal(sent.length, 1, 'answered once')
  const err = sent[0]
  t.ok(isGatewayError(err))
  t.match(err, { code: 'JOTGATE_UPSTREAM_UNAVAILABLE', statusCode: 502, reason: 'upstream-body' })
  t.same(headers, {}, 'the upstream fields are gone')
})

t.test('large, chunked and bodiless answers are not read here', async (t) => {
  for (const [label, request, statusCode, fields] of [
    ['over the size', GET, 200, { 'content-length': String(BUFFERED_BODY_BYTES + 1) }],
    ['chunked', GET, 200, { 'transfer-encoding': 'chunked' }],
    ['empty', GET, 200, { 'content-length': '0' }]
  ] as const) {
    const body = Readable.from([Buffer.from('x')])
    const { reply, sent } = fakeReply({})
    sendUpstreamBody(request, reply, { statusCode, headers: { ...fields }, stream: body })
    t.equal(sent[0], body, `${label}: streamed`)
  }
  for (const [label, request, statusCode] of [['HEAD', { method: 'HEAD' } as FastifyRequest, 200], ['204', GET, 204], ['304', GET, 304]] as const) {
    const body = new PassThrough()
    const { reply, sent } = fakeReply({ 'content-length': '5000' })
    sendUpstreamBody(request, reply, { statusCode, headers: { 'content-length': '5000' }, stream: body })
    t.same(sent, [undefined], `${label}: answered at once, no payload`)
    body.destroy(new Error('undici: length mismatch'))
    await turn()
    t.pass(`${label}: a failing body after the answer is ignored`)
  }
})
