/**
 * Login can set the tokens as cookies (issue 7): HttpOnly, Secure,
 * SameSite, Path; when the body asks (`cookie: true`) or the client is set
 * up for it; refresh can spend the refresh cookie; logout clears them.
 * Setting or spending cookies needs a trusted origin (login CSRF).
 */
import t from 'tap'
import { startUpstream } from '../helpers/upstream.js'
import { baseConfig } from '../helpers/gateway.js'
import { send, type RawAnswer } from '../helpers/http.js'
import { loadConfigObject } from '../../src/config/load.js'
import { ConfigError } from '../../src/config/problems.js'
import { createTokenCookies } from '../../src/auth/cookies.js'
import { keyDir } from '../helpers/zoo.js'
import { authGateway, usersFile, decode } from './auth-kit.js'

/** name -> { value, attributes (lower-case) } of every Set-Cookie. */
function setCookies (res: RawAnswer): Record<string, { value: string, attrs: Record<string, string> }> {
  const out: Record<string, { value: string, attrs: Record<string, string> }> = {}
  const list = res.headers['set-cookie'] ?? []
  for (const line of Array.isArray(list) ? list : [list]) {
    const [pair, ...attrs] = line.split(';').map((s) => s.trim())
    const eq = pair!.indexOf('=')
    out[pair!.slice(0, eq)] = {
      value: pair!.slice(eq + 1),
      attrs: Object.fromEntries(attrs.map((a) => { const i = a.indexOf('='); return i === -1 ? [a.toLowerCase(), ''] : [a.slice(0, i).toLowerCase(), a.slice(i + 1)] }))
    }
  }
  return out
}

t.test('token cookies', async (t) => {
  const up = await startUpstream()
  const file = await usersFile([{ username: 'alice', password: 'alice-pw', hash: '2b', claims: { roles: ['user'] } }])
  const gw = await authGateway({
    name: 'login-cookies',
    auth: { users: { file }, rateLimit: { max: 1000 }, cookies: {}, clients: { web: {}, spa: { cookies: true } } },
    tokens: { sources: { cookie: { name: 'jg' } } },
    routes: [{ path: '/', upstream: up.url }]
  })
  t.teardown(async () => { await gw.close(); await up.close() })
  const own = new URL(gw.url).origin
  const json = (body: Record<string, unknown>) => JSON.stringify(body)
  const loginAs = (body: Record<string, unknown>, headers: Array<[string, string]> = [['Origin', own]]) =>
    send(gw.url, 'POST', '/auth/login', [['Content-Type', 'application/json'], ...headers], json({ username: 'alice', password: 'alice-pw', client_id: 'web', ...body }))

  t.test('no cookies unless asked', async (t) => {
    const res = await loginAs({})
    t.equal(res.status, 200)
    t.equal(res.headers['set-cookie'], undefined)
  })

  t.test('cookie: true sets both tokens as HttpOnly, Secure, SameSite=Strict cookies', async (t) => {
    const res = await loginAs({ cookie: true })
    t.equal(res.status, 200)
    const body = res.json as { access_token: string, refresh_token: string, expires_in: number, refresh_expires_in: number }
    t.ok(typeof body.access_token === 'string', 'the body keeps its RFC 6749 shape')
    const cookies = setCookies(res)
    t.same(Object.keys(cookies).sort(), ['jg', 'jotgate_refresh'])
    t.equal(cookies.jg!.value, body.access_token)
    t.same(cookies.jg!.attrs, { path: '/', 'max-age': String(body.expires_in), httponly: '', secure: '', samesite: 'Strict' })
    t.equal(cookies.jotgate_refresh!.value, body.refresh_token)
    t.same(cookies.jotgate_refresh!.attrs, { path: '/auth', 'max-age': String(body.refresh_expires_in), httponly: '', secure: '', samesite: 'Strict' }, 'the refresh cookie only goes to the token endpoints')

    const form = await send(gw.url, 'POST', '/auth/login', [['Content-Type', 'application/x-www-form-urlencoded'], ['Origin', own]], 'username=alice&password=alice-pw&client_id=web&cookie=true')
    t.same(Object.keys(setCookies(form)).sort(), ['jg', 'jotgate_refresh'], 'cookie=true in a form body too')
    const spa = await loginAs({ client_id: 'spa' })
    t.same(Object.keys(setCookies(spa)).sort(), ['jg', 'jotgate_refresh'], 'a client with cookies: true gets them without asking')
    t.equal(decode(spa.json!.access_token as string).payload.azp, 'spa')
  })

  t.test('the access cookie authenticates proxied requests', async (t) => {
    const cookies = setCookies(await loginAs({ cookie: true }))
    const res = await send(gw.url, 'GET', '/data', [['Cookie', `jg=${cookies.jg!.value}`]])
    t.equal(res.status, 200)
    t.equal(up.seen.at(-1)?.headers['x-user-id'], 'alice')
    t.equal(up.seen.at(-1)?.headers.cookie, undefined, 'the token cookie is not forwarded')
  })

  t.test('a login that would set cookies from a foreign page is refused (login CSRF)', async (t) => {
    for (const [label, headers] of [['cross-site', [['Origin', 'https://evil.example']]], ['no origin', []]] as const) {
      const res = await loginAs({ cookie: true }, headers as unknown as Array<[string, string]>)
      t.equal(res.status, 403, `${label}: 403`)
      t.equal(res.json?.code, 'JOTGATE_CSRF')
      t.equal(res.headers['set-cookie'], undefined, `${label}: no cookie set`)
    }
    t.equal((await loginAs({}, [['Origin', 'https://evil.example']])).status, 200, 'a login without cookies is not browser-ambient: no origin check')
  })

  t.test('refresh spends the refresh cookie and sets new cookies', async (t) => {
    const first = setCookies(await loginAs({ cookie: true }))
    const refreshCookie: [string, string] = ['Cookie', `jotgate_refresh=${first.jotgate_refresh!.value}`]
    const foreign = await send(gw.url, 'POST', '/auth/refresh', [refreshCookie, ['Origin', 'https://evil.example']])
    t.equal(foreign.status, 403, 'cross-site refresh refused')
    t.equal(foreign.json?.code, 'JOTGATE_CSRF')
    const res = await send(gw.url, 'POST', '/auth/refresh', [refreshCookie, ['Origin', own]])
    t.equal(res.status, 200)
    const next = setCookies(res)
    t.equal(next.jg!.value, res.json!.access_token)
    t.not(next.jotgate_refresh!.value, first.jotgate_refresh!.value, 'rotated')
    const again = await send(gw.url, 'POST', '/auth/refresh', [refreshCookie, ['Origin', own]])
    t.equal(again.status, 401, 'the old refresh cookie is spent')
    t.equal(again.json?.code, 'JOTGATE_REFRESH_INVALID')
    const missing = await send(gw.url, 'POST', '/auth/refresh', [['Origin', own]])
    t.equal(missing.status, 400, 'no refresh token anywhere: 400')
  })

  t.test('logout with the cookie revokes the session and clears the cookies', async (t) => {
    const cookies = setCookies(await loginAs({ cookie: true }))
    const jar: [string, string] = ['Cookie', `jg=${cookies.jg!.value}; jotgate_refresh=${cookies.jotgate_refresh!.value}`]
    const foreign = await send(gw.url, 'POST', '/auth/logout', [jar, ['Origin', 'https://evil.example']])
    t.equal(foreign.status, 403, 'a cross-site logout is refused')
    t.equal(foreign.json?.code, 'JOTGATE_CSRF')
    const res = await send(gw.url, 'POST', '/auth/logout', [jar, ['Origin', own]])
    t.equal(res.status, 204)
    const cleared = setCookies(res)
    t.equal(cleared.jg?.value, '')
    t.equal(cleared.jg?.attrs['max-age'], '0')
    t.equal(cleared.jg?.attrs.path, '/')
    t.equal(cleared.jotgate_refresh?.attrs['max-age'], '0')
    t.equal(cleared.jotgate_refresh?.attrs.path, '/auth')
    const after = await send(gw.url, 'GET', '/data', [['Cookie', `jg=${cookies.jg!.value}`]])
    t.equal(after.status, 401)
    t.equal(after.json?.code, 'JOTGATE_TOKEN_REVOKED')
  })

  t.test('logout-all with a header token clears the cookies the browser sent', async (t) => {
    const res = await loginAs({ cookie: true })
    const cookies = setCookies(res)
    const out = await send(gw.url, 'POST', '/auth/logout-all', [['Authorization', `Bearer ${res.json!.access_token as string}`], ['Cookie', `jg=${cookies.jg!.value}`]])
    t.equal(out.status, 401, 'header and cookie together are two tokens')
    t.equal(out.json?.code, 'JOTGATE_TOKEN_AMBIGUOUS')
    const ok = await send(gw.url, 'POST', '/auth/logout-all', [['Authorization', `Bearer ${res.json!.access_token as string}`], ['Cookie', `jotgate_refresh=${cookies.jotgate_refresh!.value}`]])
    t.equal(ok.status, 204)
    t.equal(setCookies(ok).jg?.attrs['max-age'], '0', 'cleared')
  })
})

t.test('cookie settings: attributes and config checks', async (t) => {
  const build = (auth: Record<string, unknown>, sources: Record<string, unknown> | undefined) => loadConfigObject({
    ...baseConfig('cookie-config'),
    tokens: { ...baseConfig().tokens as object, ...(sources === undefined ? {} : { sources }) },
    auth: { users: { file: '/dev/null' }, ...auth }
  }, keyDir)
  const problems = (auth: Record<string, unknown>, sources?: Record<string, unknown>) => {
    try {
      build(auth, sources)
      return []
    } catch (err) {
      return err instanceof ConfigError ? err.problems.map((p) => p.path) : [String(err)]
    }
  }
  t.ok(problems({ cookies: {} }).includes('auth.cookies'), 'auth.cookies needs tokens.sources.cookie')
  t.ok(problems({ cookies: { secure: false } }, { cookie: { name: '__Host-jg' } }).includes('tokens.sources.cookie.name'), '__Host- needs Secure')
  t.ok(problems({ cookies: { refreshName: 'jg' } }, { cookie: { name: 'jg' } }).includes('auth.cookies.refreshName'), 'two cookies, two names')
  t.ok(problems({ clients: { web: { cookies: true } } }).includes('auth.clients["web"].cookies'), 'a cookie client needs auth.cookies')
  t.ok(problems({ cookies: { sameSite: 'none' } }, { cookie: {} }).includes('auth.cookies.sameSite'), 'SameSite strict or lax only')
})

t.test('cookie attributes follow auth.cookies', async (t) => {
  const users = await usersFile([{ username: 'a', password: 'p', hash: '2b' }])
  const { config } = loadConfigObject({
    ...baseConfig('cookie-attrs'),
    tokens: { ...baseConfig().tokens as object, sources: { cookie: { name: 'sess' } } },
    auth: { basePath: '/login-api', users: { file: users }, cookies: { secure: false, sameSite: 'lax', path: '/app', domain: 'example.com', refreshName: 'rt' } }
  }, keyDir)
  const cookies = createTokenCookies(config)!
  const [access, refresh] = cookies.set({ access_token: 'A', refresh_token: 'R', token_type: 'Bearer', expires_in: 5, refresh_expires_in: 9 })
  t.equal(access, 'sess=A; Path=/app; Max-Age=5; HttpOnly; SameSite=Lax; Domain=example.com')
  t.equal(refresh, 'rt=R; Path=/login-api; Max-Age=9; HttpOnly; SameSite=Lax; Domain=example.com')
})
