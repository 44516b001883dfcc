/**
 * src/log.ts: the lazy request logger Fastify hands each request
 * (`request.log`) and the request line, written as pino would write it.
 */
import t from 'tap'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { createLogger, requestLineWriter, RequestLogger, type RequestLineFields } from '../../src/log.js'

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
  requestLineWriter(log).write({ reqId: 'r-4', method: 'GET', route: '/', status: 200, code: null, reason: null, ms: 1 })
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

t.test('the request line is byte for byte what pino writes for the same fields', async (t) => {
  const saved = process.env.LOG_LEVEL
  delete process.env.LOG_LEVEL
  t.teardown(() => { if (saved !== undefined) process.env.LOG_LEVEL = saved })
  const chunks: string[] = []
  const destination = new Writable({ write (chunk, _enc, cb) { chunks.push(String(chunk)); cb() } })
  const log = createLogger({ level: 'info', destination })
  const writer = requestLineWriter(log)
  const viaPino = log.child({}, { redact: [] })
  const cases: RequestLineFields[] = [
    { reqId: 'b7c1f0a2-1d7e-4c1b-9a57-0c1f2e3d4b5a', method: 'GET', route: '/api/*', status: 200, code: null, reason: null, ms: 1.25 },
    { reqId: 'quote"back\\slash', method: 'POST', route: '(none)', status: 401, code: 'JOTGATE_TOKEN_MISSING', reason: 'no-token', ms: 0 },
    { reqId: 'ctrl\u0001\n\t', method: 'DELETE', route: '/über/ünïcode', status: 503, code: 'JOTGATE_STORE_UNAVAILABLE', reason: 'store-down', ms: 12345.67 },
    { reqId: 'ws-1', method: 'GET', route: '/ws', status: 101, code: null, reason: null, ms: 3.5, websocket: true },
    { reqId: 'nan', method: 'GET', route: '/', status: 200, code: null, reason: null, ms: Number.NaN }
  ]
  for (const fields of cases) {
    writer.write(fields)
    const { websocket, ...rest } = fields
    viaPino.info(websocket === true ? { ...rest, websocket } : rest, 'request')
  }
  await new Promise((resolve) => setImmediate(resolve))
  const lines = chunks.join('').split('\n').filter((l) => l !== '').map((l) => l.replace(/"time":\d+/, '"time":0'))
  t.equal(lines.length, cases.length * 2, 'one line per call, each ending in a newline')
  for (let i = 0; i < cases.length; i++) {
    t.equal(lines[2 * i], lines[2 * i + 1], `case ${i + 1}: the same bytes as pino's`)
    const parsed = JSON.parse(lines[2 * i]!) as Record<string, unknown>
    t.equal(parsed.reqId, cases[i]!.reqId, `case ${i + 1}: the request id survives escaping`)
    t.equal(parsed.route, cases[i]!.route)
  }
})

t.test('the request line follows the level and leaves a foreign logger its own format', async (t) => {
  const saved = process.env.LOG_LEVEL
  delete process.env.LOG_LEVEL
  t.teardown(() => { if (saved !== undefined) process.env.LOG_LEVEL = saved })
  const quiet: string[] = []
  const warnOnly = createLogger({ level: 'warn', destination: new Writable({ write (chunk, _enc, cb) { quiet.push(String(chunk)); cb() } }) })
  t.equal(requestLineWriter(warnOnly).enabled(), false, 'level warn: no request lines')
  t.equal(requestLineWriter(createLogger({ level: 'debug', destination: new Writable({ write (_c, _e, cb) { cb() } }) })).enabled(), true, 'level debug: request lines')

  // A logger made elsewhere, with a level formatter of its own: its lines go through pino.
  const foreign: string[] = []
  const theirs = pino({ formatters: { level: (label) => ({ level: label }) } }, new Writable({ write (chunk, _enc, cb) { foreign.push(String(chunk)); cb() } }))
  requestLineWriter(theirs).write({ reqId: 'f-1', method: 'GET', route: '/', status: 204, code: null, reason: null, ms: 2, websocket: false })
  await new Promise((resolve) => setImmediate(resolve))
  const line = JSON.parse(foreign.join('')) as Record<string, unknown>
  t.same([line.level, line.reqId, line.status, line.msg], ['info', 'f-1', 204, 'request'], 'written with the logger\'s own formatters')
  t.notOk('websocket' in line, 'websocket only when true, as in the template')
  t.equal(quiet.length, 0)
})
