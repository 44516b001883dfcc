/**
 * src/log.ts: the lazy request logger Fastify hands each request
 * (`request.log`) and the request-line logger without redaction.
 */
import t from 'tap'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { accessLogger, createLogger, RequestLogger } from '../../src/log.js'

function capture (level = 'info'): { lines: () => Array<Record<string, unknown>>, log: ReturnType<typeof createLogger> } {
  const chunks: string[] = []
  const destination = new Writable({ write (chunk, _enc, cb) { chunks.push(String(chunk)); cb() } })
  const saved = process.env.LOG_LEVEL
  delete process.env.LOG_LEVEL
  const log = createLogger({ level, destination })
  if (saved !== undefined) process.env.LOG_LEVEL = saved
  return { log, lines: () => chunks.join('').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>) }
}

t.test('request.log: the child with the request id is made on first use only', async (t) => {
  const { log, lines } = capture()
  let children = 0
  const counting = new Proxy(log, {
    get (target, prop, receiver) {
      if (prop === 'child') return (...args: Parameters<typeof log.child>) => { children++; return target.child(...args) }
      return Reflect.get(target, prop, receiver)
    }
  })
  const quiet = new RequestLogger(counting, { reqId: 'r-1' })
  t.equal(quiet.level, 'info', 'level read from the root')
  quiet.debug({ x: 1 }, 'below the level')
  t.equal(children, 0, 'nothing logged, no child made')

  const used = new RequestLogger(counting, { reqId: 'r-2' })
  used.warn({ code: 'JOTGATE_X' }, 'refusal cause')
  used.info('second line')
  t.equal(children, 1, 'one child for the request, made on the first line')
  const written = lines()
  t.same(written.map((l) => [l.reqId, l.msg]), [['r-2', 'refusal cause'], ['r-2', 'second line']], 'both lines carry the request id')
  t.equal(written[0]!.code, 'JOTGATE_X')
})

t.test('request.log keeps redaction; the request line does not need it', async (t) => {
  const { log, lines } = capture()
  new RequestLogger(log, { reqId: 'r-3' }).info({ headers: { authorization: 'Bearer secret-token' }, password: 'pw' }, 'careless')
  accessLogger(log).info({ reqId: 'r-4', status: 200 }, 'request')
  const [careless, request] = lines()
  t.same((careless!.headers as Record<string, unknown>).authorization, '[redacted]', 'request.log redacts')
  t.equal(careless!.password, '[redacted]')
  t.same([request!.reqId, request!.status, request!.msg, request!.service], ['r-4', 200, 'request', 'jotgate'], 'the request line keeps the base fields')
})

t.test('a pino logger stands in for request.log where Fastify expects one', async (t) => {
  const root = pino({ level: 'silent' })
  const rl = new RequestLogger(root, { reqId: 'x' })
  for (const method of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent', 'child'] as const) {
    t.type(rl[method], 'function', `${method} is there`)
  }
  t.doesNotThrow(() => rl.error(new Error('boom')), 'silent root: nothing written, nothing thrown')
})
