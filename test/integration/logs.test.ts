/**
 * CONTRACT sections 1, 6 and 7: the log is pino JSON, one line per
 * request, and never holds a token, a password, a secret or a refresh
 * token. The gateway runs with the production logger (createLogger from
 * src/log.ts, redaction and serializers included) at its most verbose
 * level, through login, refresh, refresh reuse, logout, proxied requests
 * with good and bad tokens, a malformed login body and admin calls; then
 * every captured line is searched for every secret.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t from 'tap'
import { createLogger } from '../../src/log.js'
import { runGateway } from '../../src/server.js'
import { loadConfigFile, loadConfigObject } from '../../src/config/load.js'
import { hashPassword } from '../../src/auth/password.js'
import { baseConfig, startGateway } from '../helpers/gateway.js'
import { startUpstream } from '../helpers/upstream.js'
import { redisClient } from '../helpers/redis.js'
import { KEYS, keyConfigs, keyDir, mint, tamper } from '../helpers/zoo.js'

const PASSWORD = 'correct horse'
const ADMIN_TOKEN = 's3cret-admin'
/** A config HS256 key given as `secret`: its UTF-8 bytes are the key. */
const HMAC_SECRET = `known-hmac-${'x'.repeat(40)}`
/** Too short for HS256 (RFC 7518 section 3.2): a reload with it is refused. */
const SHORT_SECRET = 'short-hmac-secret-0123'

/** Sets LOG_LEVEL for the duration of `fn` (undefined: unset), then restores it. */
function withLogLevel<T> (value: string | undefined, fn: () => T): T {
  const saved = process.env.LOG_LEVEL
  if (value === undefined) delete process.env.LOG_LEVEL
  else process.env.LOG_LEVEL = value
  try {
    return fn()
  } finally {
    if (saved === undefined) delete process.env.LOG_LEVEL
    else process.env.LOG_LEVEL = saved
  }
}

t.test('LOG_LEVEL overrides the configured level', async (t) => {
  t.equal(withLogLevel(undefined, () => createLogger({ level: 'warn' }).level), 'warn', 'the config level without LOG_LEVEL')
  t.equal(withLogLevel(undefined, () => createLogger({}).level), 'info', 'info by default')
  t.equal(withLogLevel('debug', () => createLogger({ level: 'warn' }).level), 'debug', 'LOG_LEVEL wins')
  t.equal(withLogLevel('error', () => createLogger({ level: 'trace' }).level), 'error', 'also to turn it down')

  // A typo in LOG_LEVEL must not stop the gateway from starting: the
  // config level is kept and the reason logged (as JSON, like every line).
  const lines: string[] = []
  const destination = new Writable({ write (chunk, _enc, cb) { lines.push(String(chunk)); cb() } })
  const log = withLogLevel('verbose', () => createLogger({ level: 'warn', destination }))
  t.equal(log.level, 'warn', 'an unknown LOG_LEVEL falls back to the config level')
  t.ok(lines.some((l) => /LOG_LEVEL/.test((JSON.parse(l) as { msg: string }).msg)), 'and says so in a JSON line')
  t.equal(withLogLevel('', () => createLogger({ level: 'warn' }).level), 'warn', 'an empty LOG_LEVEL counts as unset')
  t.equal(withLogLevel('DEBUG', () => createLogger({ level: 'warn' }).level), 'debug', 'level names are case-insensitive')
})

interface Answer { status: number, body: Record<string, unknown> | undefined }

/** Keys repeated within one object of a JSON text (JSON.parse keeps the last silently). */
function duplicateKeys (text: string): string[] {
  const found: string[] = []
  const stack: Array<Set<string> | undefined> = []
  let expectKey = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (c === '"') {
      let j = i + 1
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1
      const top = stack[stack.length - 1]
      if (expectKey && top !== undefined) {
        const key = JSON.parse(text.slice(i, j + 1)) as string
        if (top.has(key)) found.push(key)
        top.add(key)
        expectKey = false
      }
      i = j
    } else if (c === '{') { stack.push(new Set()); expectKey = true } else if (c === '[') { stack.push(undefined) } else if (c === '}' || c === ']') { stack.pop() } else if (c === ',') { expectKey = stack[stack.length - 1] !== undefined }
  }
  return found
}

t.test('no secret reaches the log; one JSON line per request', async (t) => {
  const up = await startUpstream()
  const dir = mkdtempSync(join(tmpdir(), 'jotgate-logs-'))
  const users = join(dir, 'users.json')
  writeFileSync(users, JSON.stringify({ users: [{ username: 'alice', password: await hashPassword(PASSWORD), claims: { roles: ['user'] } }] }))
  const raw = baseConfig('logs', {
    server: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0, token: ADMIN_TOKEN },
    tokens: { ...(baseConfig().tokens as Record<string, unknown>), keys: [...keyConfigs(), { kid: 'hs-known', alg: 'HS256', secret: HMAC_SECRET }] },
    auth: { users: { file: users } },
    routes: [{ path: '/api', upstream: up.url }]
  })
  const keyPrefix = (raw.store as { keyPrefix: string }).keyPrefix
  // From a file, as `jotgate start` runs it, so that a reload can be tried.
  const configFile = join(dir, 'gateway.json')
  writeFileSync(configFile, JSON.stringify(raw))
  const loaded = loadConfigFile(configFile, {})

  const chunks: string[] = []
  const destination = new Writable({ write (chunk, _enc, cb) { chunks.push(String(chunk)); cb() } })
  // The most verbose level: debug-only lines (refusal causes) are searched too.
  const log = withLogLevel(undefined, () => createLogger({ level: 'trace', destination }))
  const running = await runGateway(loaded, log, {})
  const base = `http://127.0.0.1:${running.ports.server}`
  const adminBase = `http://127.0.0.1:${running.ports.admin!}`
  t.teardown(async () => {
    await running.shutdown('test')
    await up.close()
    const client = redisClient()
    const keys = await client.keys(`${keyPrefix}*`)
    if (keys.length > 0) await client.del(...keys)
    client.disconnect()
  })

  const call = async (url: string, init: { method?: string, headers?: Record<string, string>, body?: string } = {}): Promise<Answer> => {
    const res = await fetch(url, init)
    const text = await res.text()
    let body: Record<string, unknown> | undefined
    try { body = JSON.parse(text) as Record<string, unknown> } catch { body = undefined }
    return { status: res.status, body }
  }
  /** Requests through the gateway, each with its own X-Request-Id: id -> expected status and code. */
  const expected = new Map<string, { status: number, code: string | null, route: string }>()
  const gw = async (route: string, path: string, status: number, code: string | null, init: { method?: string, headers?: Record<string, string>, body?: string } = {}): Promise<Answer> => {
    const id = `logs-${randomBytes(6).toString('hex')}`
    expected.set(id, { status, code, route })
    const answer = await call(`${base}${path}`, { ...init, headers: { ...(init.headers ?? {}), 'x-request-id': id } })
    t.equal(answer.status, status, `${init.method ?? 'GET'} ${path}: ${status}`)
    return answer
  }
  const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const bearer = (token: string, extra: Record<string, string> = {}) => ({ headers: { authorization: `Bearer ${token}`, ...extra } })

  // Logins: JSON, form-encoded, a wrong password, a body that is not JSON.
  const login = (await gw('/auth/login', '/auth/login', 200, null, json({ username: 'alice', password: PASSWORD }))).body!
  const formLogin = (await gw('/auth/login', '/auth/login', 200, null, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: 'alice', password: PASSWORD }).toString()
  })).body!
  await gw('/auth/login', '/auth/login', 401, 'JOTGATE_LOGIN_FAILED', json({ username: 'alice', password: `${PASSWORD} battery` }))
  await gw('/auth/login', '/auth/login', 400, 'JOTGATE_BAD_REQUEST', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"username":"alice","password":"${PASSWORD}",`
  })
  const access = String(login.access_token)
  const refreshToken = String(login.refresh_token)
  const formAccess = String(formLogin.access_token)
  const formRefresh = String(formLogin.refresh_token)

  // A refresh, then proxied requests with the new token.
  const refreshed = (await gw('/auth/refresh', '/auth/refresh', 200, null, json({ refresh_token: refreshToken }))).body!
  const access2 = String(refreshed.access_token)
  const refresh2 = String(refreshed.refresh_token)
  const seen = await gw('/api', '/api/items?x=1', 200, null, bearer(access2))
  t.equal((seen.body?.headers as Record<string, string>)['x-user-id'], 'alice', 'the upstream saw the identity')
  await gw('/api', '/api/items', 200, null, bearer(access2, { cookie: `session=${access2}` }))

  // A token signed with the HS256 config secret, a tampered one, a refresh
  // token sent as a bearer, a token from an unknown key, an expired one.
  const hsToken = mint({ key: { kid: 'hs-known', alg: 'HS256', signKey: Buffer.from(HMAC_SECRET), config: {} } })
  await gw('/api', '/api/items', 200, null, bearer(hsToken))
  const tampered = tamper(access2)
  await gw('/api', '/api/items', 401, 'JOTGATE_TOKEN_SIGNATURE', bearer(tampered))
  await gw('/api', '/api/items', 401, 'JOTGATE_TOKEN_MALFORMED', bearer(refresh2))
  const unknownKid = mint({ header: { kid: 'nope' } })
  await gw('/api', '/api/items', 401, 'JOTGATE_TOKEN_KEY_UNKNOWN', bearer(unknownKid))
  await gw('/api', '/api/x', 401, 'JOTGATE_TOKEN_MISSING')
  await gw('(none)', '/elsewhere', 404, 'JOTGATE_ROUTE_NOT_FOUND', bearer(access2))

  // Refresh reuse (revokes the session), then logout of the other session.
  await gw('/auth/refresh', '/auth/refresh', 401, 'JOTGATE_REFRESH_INVALID', json({ refresh_token: refreshToken }))
  await gw('/api', '/api/items', 401, 'JOTGATE_TOKEN_REVOKED', bearer(access2))
  await gw('/auth/logout', '/auth/logout', 204, null, { ...json({ refresh_token: formRefresh }), headers: { 'content-type': 'application/json', authorization: `Bearer ${formAccess}` } })
  await gw('/api', '/api/items', 401, 'JOTGATE_TOKEN_REVOKED', bearer(formAccess))

  // Admin calls: a wrong admin token, then a revocation with the right one.
  const admin = (authorization: string | undefined, body: unknown) => call(`${adminBase}/revocations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }) },
    body: JSON.stringify(body)
  })
  t.equal((await admin('Bearer wrong-admin-token', { sub: 'alice' })).status, 401, 'admin write with a wrong token')
  t.equal((await admin(`Bearer ${ADMIN_TOKEN}`, { sub: 'alice' })).status, 201, 'admin revocation')
  t.equal((await call(`${adminBase}/metrics`)).status, 200)
  await gw('/api', '/api/items', 401, 'JOTGATE_TOKEN_REVOKED', bearer(hsToken))

  // A refused reload: the problems are logged, never the values (here a
  // too-short HMAC secret and a new admin token).
  const bad = structuredClone(raw) as { admin: { token: string }, tokens: { keys: Array<Record<string, unknown>> } }
  bad.admin.token = `${ADMIN_TOKEN}-next`
  bad.tokens.keys.push({ kid: 'hs-short', alg: 'HS256', secret: SHORT_SECRET })
  writeFileSync(configFile, JSON.stringify(bad))
  t.equal(await running.reload(), false, 'a bad config is refused on reload')

  // Stop the gateway so that the shutdown lines are searched too.
  await running.shutdown('test')
  const text = chunks.join('')

  // Every line is one JSON object.
  const lines = text.split('\n').filter((l) => l !== '')
  t.ok(lines.length > expected.size, `${lines.length} log lines`)
  const entries: Record<string, unknown>[] = []
  let invalid = 0
  for (const line of lines) {
    try {
      const entry = JSON.parse(line) as unknown
      if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) invalid++
      else entries.push(entry as Record<string, unknown>)
    } catch {
      invalid++
    }
  }
  t.equal(invalid, 0, 'every line is a JSON object')
  t.ok(entries.some((e) => e.msg === 'config reload refused; the old config keeps serving'), 'the refused reload is logged')
  t.ok(entries.some((e) => e.listener === 'admin' && (e.code === 'JOTGATE_ADMIN_UNAUTHORIZED' || e.status === 401)), 'a refused admin write is logged')
  // Log pipelines (Elasticsearch, Loki's JSON stage) refuse or mangle
  // objects with a repeated key; JSON.parse silently keeps the last one.
  const repeated = lines.filter((l) => duplicateKeys(l).length > 0).map((l) => `${duplicateKeys(l).join(',')}: ${JSON.parse(l).msg as string}`)
  t.same([...new Set(repeated)], [], 'no line repeats a key')

  // No secret, in any form a careless log call could write it.
  const secrets: Array<[string, string]> = [
    ['password', PASSWORD],
    ['password, form-encoded', encodeURIComponent(PASSWORD).replaceAll('%20', '+')],
    ['wrong password', `${PASSWORD} battery`],
    ['admin token', ADMIN_TOKEN],
    ['HMAC secret', HMAC_SECRET],
    ['HMAC secret, base64', Buffer.from(HMAC_SECRET).toString('base64')],
    ['refused HMAC secret', SHORT_SECRET],
    ['zoo HMAC secret', (KEYS.hs256!.config.secretBase64 as string)]
  ]
  const tokens: Array<[string, string]> = [
    ['access token', access], ['form-login access token', formAccess], ['refreshed access token', access2],
    ['HS256 token', hsToken], ['tampered token', tampered], ['unknown-kid token', unknownKid],
    ['refresh token', refreshToken], ['form-login refresh token', formRefresh], ['refreshed refresh token', refresh2]
  ]
  for (const [what, value] of [...secrets, ...tokens]) t.notOk(text.includes(value), `no log line holds the ${what}`)
  // Not even a part of a signature or of a refresh token: any 20 characters.
  for (const [what, value] of tokens) {
    const secretPart = value.includes('.') ? value.split('.')[2]! : value
    const leaked: string[] = []
    for (let i = 0; i + 20 <= secretPart.length; i++) {
      const window = secretPart.slice(i, i + 20)
      if (text.includes(window)) leaked.push(window)
    }
    t.same(leaked, [], `no 20-character part of the ${what}${value.includes('.') ? ' signature' : ''} is logged`)
  }
  // The redaction marker shows the paths did work where a secret was near.
  t.notOk(/"authorization":"(?!\[redacted\])/i.test(text), 'no authorization header value is logged')

  // One `request` line per request, with its id, route, status, code and time.
  const requestLines = entries.filter((e) => e.msg === 'request')
  for (const [id, want] of expected) {
    const mine = requestLines.filter((e) => e.reqId === id)
    t.equal(mine.length, 1, `one request line for ${id} (${want.status})`)
    const line = mine[0]
    if (line === undefined) continue
    t.equal(line.route, want.route, `${id}: route`)
    t.equal(line.status, want.status, `${id}: status`)
    t.equal(line.code, want.code, `${id}: code`)
    t.ok(typeof line.ms === 'number' && line.ms >= 0, `${id}: latency in ms`)
    t.equal(line.level, 30, `${id}: info level`)
  }
  t.equal(requestLines.length, expected.size, 'no other request lines')
  t.ok(entries.some((e) => e.msg === 'jotgate listening'), 'start-up is logged')
  t.ok(entries.some((e) => e.msg === 'stopped'), 'shutdown is logged')
})

t.test('log.requests: false drops the request line and nothing else; a reload turns it back on', async (t) => {
  const up = await startUpstream()
  const routes = [{ path: '/api', upstream: up.url }]
  const gw = await startGateway({ name: 'log-requests', config: { routes, log: { level: 'info', requests: false } } })
  t.teardown(async () => { await gw.close(); await up.close() })
  const requestLines = () => gw.logs.map((l) => JSON.parse(l) as { msg: string, status?: number }).filter((l) => l.msg === 'request')
  const token = mint()
  t.equal((await fetch(`${gw.url}/api/x`, { headers: { authorization: `Bearer ${token}` } })).status, 200)
  t.equal((await fetch(`${gw.url}/api/x`)).status, 401)
  t.same(requestLines(), [], 'no request line, answered or refused')
  await gw.gateway.reload(loadConfigObject(baseConfig('log-requests', { routes, log: { level: 'info', requests: true } }), keyDir))
  t.equal((await fetch(`${gw.url}/api/x`, { headers: { authorization: `Bearer ${token}` } })).status, 200)
  t.same(requestLines().map((l) => l.status), [200], 'one line per request again after the reload')
})
