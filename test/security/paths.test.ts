/**
 * Attack family: paths (CONTRACT section 3 step 1). The one normalized path
 * is matched and forwarded, so no spelling of a protected path slips past the
 * route table through a public one: dot segments, encoded slashes,
 * backslashes, NUL, case, `;`, the absolute and asterisk forms. Requests are
 * written as raw bytes over a socket: fetch() would resolve the dot segments
 * itself. Also: segment-boundary matching, rewrite and base paths, methods
 * and require rules (formerly test/integration/paths.test.ts).
 */
import t from 'tap'
import { startUpstream, type SeenRequest, type Upstream } from '../helpers/upstream.js'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { claims, mint, rawExchange, rawRequest, rawText, type RawResponse } from '../helpers/zoo.js'
import type { TapTest } from './kit.js'

const up = await startUpstream()
const gw = await startGateway({
  name: 'sec-paths',
  config: {
    routes: [
      { path: '/admin', upstream: up.url, require: { roles: ['admin'] } },
      { path: '/public', upstream: up.url, auth: 'none' }
    ]
  }
})
t.teardown(async () => { await gw.close(); await up.close() })

const adminToken = mint({ payload: claims({ sub: 'root', roles: ['admin'] }) })
const userToken = mint({ payload: claims({ sub: 'joe', roles: ['user'] }) })

interface SendOptions { token?: string, method?: string }

async function send (g: TestGateway, target: string, options: SendOptions = {}): Promise<RawResponse> {
  const headers: Array<[string, string]> = options.token === undefined ? [] : [['Authorization', `Bearer ${options.token}`]]
  return rawRequest(g.url, rawText(target, headers, options.method ?? 'GET'))
}

/** A refusal: status and code in the body, nothing upstream. */
async function refused (t: TapTest, g: TestGateway, u: Upstream, target: string, status: number, code: string, options: SendOptions = {}, src = ''): Promise<RawResponse> {
  const before = u.seen.length
  const res = await send(g, target, options)
  const label = `${options.method ?? 'GET'} ${JSON.stringify(target)}${src === '' ? '' : ` [${src}]`}`
  t.equal(res.status, status, `${label}: status ${status}`)
  if (options.method !== 'HEAD') {
    t.equal(res.json?.statusCode, status, `${label}: statusCode`)
    t.equal(res.json?.code, code, `${label}: ${code}`)
  }
  t.equal(u.seen.length, before, `${label}: upstream saw nothing`)
  return res
}

/** Forwarded: exactly once, with exactly this path and query. */
async function forwarded (t: TapTest, g: TestGateway, u: Upstream, target: string, expectedUrl: string, options: SendOptions = {}, src = ''): Promise<SeenRequest> {
  const before = u.seen.length
  const res = await send(g, target, options)
  const label = `${JSON.stringify(target)}${src === '' ? '' : ` [${src}]`}`
  t.equal(res.status, 200, `${label}: 200 (${res.body.slice(0, 100)})`)
  t.equal(u.seen.length, before + 1, `${label}: upstream saw it once`)
  const seen = u.seen.at(-1)!
  t.equal(seen.url, expectedUrl, `${label}: upstream saw ${expectedUrl}`)
  return seen
}

const DOTS = 'RFC 3986 section 5.2.4; CVE-2021-41773 (Apache %2e traversal)'
const MISMATCH = 'CVE-2019-9901 (Envoy: route matched on the unnormalized path)'
const SLASH = 'CVE-2021-29492 (Envoy escaped slashes); CVE-2007-0450 (Tomcat %2F, %5C)'
const BACKSLASH = 'CVE-2007-0450 (Tomcat \\); Orange Tsai, "Breaking Parser Logic" (Black Hat 2018)'
const NUL = 'CWE-158 (NUL truncation); RFC 3986 section 7.3'
const SEMICOLON = 'Orange Tsai, "Breaking Parser Logic" (..; on Tomcat); CVE-2020-1957 (Apache Shiro ;)'
const ABSOLUTE = 'RFC 9112 section 3.2.2; PortSwigger "Routing-based SSRF"'
const OVERLONG = 'CVE-2000-0884 (IIS overlong UTF-8 traversal); RFC 3629 section 10'
const DOUBLE = 'CVE-2021-42013 and CVE-2001-0333 (double decoding): decoded once only'

t.test('traversal and encoding tricks toward /admin', async (t) => {
  // Each normalizes to /admin (or under it): the /admin route applies and wants a token.
  const toAdmin: Array<[string, string]> = [
    ['/public/../admin', DOTS],
    ['/public/%2e%2e/admin', DOTS],
    ['/public/%2E%2E/admin', DOTS],
    ['/public/%2e%2E/admin', DOTS],
    ['/public/.%2e/admin', DOTS],
    ['/public/%2e./admin', DOTS],
    ['/public/.%2E/admin', DOTS],
    ['/public/%2e/%2e%2e/admin', DOTS],
    ['/public//../admin', MISMATCH],
    ['/public/./../admin', DOTS],
    ['/public/x/../../admin', DOTS],
    ['/public/x/%2e%2e/%2e%2e/admin', DOTS],
    ['/./admin', DOTS],
    ['/%2e/admin', DOTS],
    ['//admin', MISMATCH],
    ['///admin//', MISMATCH],
    ['/adm%69n', 'RFC 3986 section 6.2.2.2 (unreserved decoded)'],
    ['/%61dmin', 'RFC 3986 section 6.2.2.2'],
    ['/admin/', MISMATCH],
    ['/admin/./', DOTS],
    ['/admin/x/..', DOTS],
    ['/public;/../admin', SEMICOLON],
    ['http://evil.test/admin', ABSOLUTE],
    ['https://evil.test/admin', ABSOLUTE],
    ['http://u:p@evil.test/admin', ABSOLUTE],
    ['http://evil.test/public/%2e%2e/admin', ABSOLUTE],
    ['HTTP://evil.test:8080/admin?x=1', ABSOLUTE]
  ]
  for (const [target, src] of toAdmin) {
    const res = await refused(t, gw, up, target, 401, 'JOTGATE_TOKEN_MISSING', {}, src)
    t.equal(res.headers['www-authenticate']?.[0], 'Bearer realm="jotgate"', `${target}: challenge`)
  }

  // Refused outright: anything servers could read differently.
  const badPath: Array<[string, string]> = [
    ['/public/..%2fadmin', SLASH],
    ['/public/..%2Fadmin', SLASH],
    ['/public/%2e%2e%2fadmin', SLASH],
    ['/%2fadmin', SLASH],
    ['/admin%2fx', SLASH],
    ['/public%2f..%2fadmin', SLASH],
    ['/%2e%2e/admin', DOTS],
    ['/public/../../admin', DOTS],
    ['/..', DOTS],
    ['/public/%2e%2e/%2e%2e/admin', DOTS],
    ['http://evil.test/a/../../admin', DOTS],
    ['/public/.../admin', 'Windows: trailing dots are dropped ("..." is "..")'],
    ['/public/..../admin', 'Windows: trailing dots are dropped'],
    ['/public/..%20/admin', 'Windows: trailing spaces are dropped'],
    ['/public/..\\admin', BACKSLASH],
    ['/public\\..\\admin', BACKSLASH],
    ['/public/..\\/admin', BACKSLASH],
    ['/public/%5c../admin', BACKSLASH],
    ['/public/%5C..%5Cadmin', BACKSLASH],
    ['/public/%2e%2e%5cadmin', BACKSLASH],
    ['/admin%00', NUL],
    ['/admin%00.json', NUL],
    ['/public/%00/../../admin', NUL],
    ['/public/..%00/admin', NUL],
    ['/admin%0d%0aX-Injected:%201', 'CWE-113 (CRLF injection)'],
    ['/public/%7f', NUL],
    ['/public/%1F', NUL],
    ['/public/%zz', 'RFC 3986 section 2.1 (malformed escape)'],
    ['/public/%', 'RFC 3986 section 2.1'],
    ['/public/%2', 'RFC 3986 section 2.1'],
    ['/public/%u002e%u002e/admin', 'IIS %u encoding (CVE-2000-0884 family)'],
    ['/public/%c0%ae%c0%ae/admin', OVERLONG],
    ['/public/%e0%80%ae%e0%80%ae/admin', OVERLONG],
    ['/public/%c0%af../admin', OVERLONG],
    ['/public/..%252fadmin', DOUBLE],
    ['/public/x#/../../admin', 'RFC 3986 section 3.5 (a fragment is never sent)'],
    ['/admin#', 'RFC 3986 section 3.5'],
    ['http:///admin', 'RFC 9110 section 4.2.1 (empty host)'],
    ['http://evil.test\\@good.test/admin', BACKSLASH],
    ['ftp://evil.test/admin', ABSOLUTE],
    // Tomcat and Jetty read `..;` as `..` (path parameters): `/public/..;/admin` is `/admin` there.
    ['/public/..;/admin', SEMICOLON],
    ['/public/%2e%2e;/admin', SEMICOLON],
    ['/public/..%3b/admin', SEMICOLON],
    ['/public/..;x=1/admin', SEMICOLON],
    ['/public/x/..%3B/..%3B/admin', SEMICOLON],
    ['evil.test/admin', 'RFC 9112 section 3.2 (origin or absolute form only)'],
    ['\\admin', BACKSLASH],
    ['*admin', 'RFC 9112 section 3.2.4'],
    ['*', 'RFC 9112 section 3.2.4 (asterisk form only with OPTIONS)']
  ]
  for (const [target, src] of badPath) await refused(t, gw, up, target, 400, 'JOTGATE_BAD_PATH', {}, src)
  await refused(t, gw, up, '*', 400, 'JOTGATE_BAD_PATH', { method: 'OPTIONS' }, 'RFC 9112 section 3.2.4 (asterisk form)')
  await refused(t, gw, up, '*/admin', 400, 'JOTGATE_BAD_PATH', { method: 'OPTIONS' }, 'RFC 9112 section 3.2.4')

  // No route: matching is exact per segment and case-sensitive, and there is
  // no catch-all here. (An upstream that folds case or reads `;` parameters
  // behind a public catch-all would be exposed: see README, Security model.)
  const noRoute: Array<[string, string]> = [
    ['/ADMIN', 'RFC 3986 section 6.2.2.1 (paths are case-sensitive)'],
    ['/Admin/x', 'RFC 3986 section 6.2.2.1'],
    ['/%41DMIN', 'RFC 3986 section 6.2.2.1'],
    ['/%61DMIN', 'RFC 3986 section 6.2.2.1'],
    ['/admin;x=1', SEMICOLON],
    ['/admin;jsessionid=x/y', SEMICOLON],
    ['/;/admin', SEMICOLON],
    ['/admin%20', 'Windows: trailing spaces are dropped'],
    ['/admin.', 'Windows: trailing dots are dropped'],
    ['/admin%23', 'RFC 3986 section 2.2 (an encoded # is data)'],
    ['/admin%3F', 'RFC 3986 section 2.2'],
    ['/%2561dmin', DOUBLE],
    ['/publicity', 'CONTRACT section 2 (segment boundaries)'],
    ['/public.x', 'CONTRACT section 2'],
    ['/public/..', DOTS],
    ['/', 'CONTRACT section 3 (no match: 404)'],
    ['/x/../', DOTS],
    ['http://evil.test?/admin', ABSOLUTE]
  ]
  for (const [target, src] of noRoute) await refused(t, gw, up, target, 404, 'JOTGATE_ROUTE_NOT_FOUND', {}, src)

  // With tokens: a non-admin is refused; an admin reaches exactly /admin.
  await refused(t, gw, up, '/public/%2e%2e/admin', 403, 'JOTGATE_FORBIDDEN', { token: userToken }, DOTS)
  await forwarded(t, gw, up, '/public/%2e%2e/admin', '/admin', { token: adminToken })
  await forwarded(t, gw, up, 'http://evil.test/admin/x?y=%2e', '/admin/x?y=%2e', { token: adminToken })
  await forwarded(t, gw, up, '/adm%69n/x/./y/../z', '/admin/x/z', { token: adminToken })
})

t.test('bytes the HTTP parser refuses, and the CONNECT form', async (t) => {
  const raw: Array<[string, string, string]> = [
    ['GET /admin\u0000x HTTP/1.1', 'JOTGATE_BAD_PATH', NUL],
    ['GET /public/\t/../admin HTTP/1.1', 'JOTGATE_BAD_PATH', 'RFC 9112 section 3 (no whitespace in the target)'],
    ['GET /public/\u00e9 HTTP/1.1', 'JOTGATE_BAD_PATH', 'RFC 3986 section 2 (raw non-ASCII)'],
    ['GET /public /admin HTTP/1.1', 'JOTGATE_BAD_REQUEST', 'RFC 9112 section 3 (one space-free target)'],
    ['get /admin HTTP/1.1', 'JOTGATE_BAD_REQUEST', 'RFC 9110 section 9.1 (methods are case-sensitive)']
  ]
  for (const [line, code, src] of raw) {
    const before = up.seen.length
    const res = await rawRequest(gw.url, Buffer.from(`${line}\r\nHost: jotgate.test\r\nConnection: close\r\n\r\n`, 'latin1'))
    t.equal(res.status, 400, `${JSON.stringify(line)}: 400 [${src}]`)
    t.equal(res.json?.code, code, `${JSON.stringify(line)}: ${code}`)
    t.equal(up.seen.length, before, `${JSON.stringify(line)}: upstream saw nothing`)
  }
  // CONNECT (RFC 9110 section 9.3.6): no tunnel is ever opened; a coded 405, then the connection is closed.
  const before = up.seen.length
  const res = await rawExchange(gw.url, 'CONNECT 127.0.0.1:6379 HTTP/1.1\r\nHost: 127.0.0.1:6379\r\n\r\nPING\r\n')
  t.ok(res.closed, 'CONNECT: the connection is closed [RFC 9110 section 9.3.6; PortSwigger "SSRF via CONNECT"]')
  t.notMatch(res.bytes.toString('latin1'), /^HTTP\/1\.[01] 2/, 'CONNECT: never a 2xx (no tunnel)')
  t.match(res.bytes.toString('latin1'), /^HTTP\/1\.1 405 [^\r]*\r\n(?:[^\r]+\r\n)*allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n/i, 'CONNECT: 405 with Allow')
  t.match(res.bytes.toString('latin1'), /\r\n\r\n\{[^}]*"code":"JOTGATE_METHOD_NOT_ALLOWED"/, 'CONNECT: the documented JSON body')
  t.equal(up.seen.length, before, 'CONNECT: upstream saw nothing')
})

t.test('public paths are forwarded as exactly the normalized path', async (t) => {
  const cases: Array<[string, string]> = [
    ['/public', '/public'],
    ['/public/', '/public/'],
    ['/public/x/../y', '/public/y'],
    ['/public/./x', '/public/x'],
    ['/public//x', '/public/x'],
    ['/public/x/.', '/public/x/'],
    ['/public/%2e', '/public/'],
    ['/public/%7e%41%2d', '/public/~A-'],
    ['/public/%252e%252e/admin', '/public/%252e%252e/admin'],
    ['/public/x%3Fy%23z', '/public/x%3Fy%23z'],
    ['/public/caf%C3%A9', '/public/caf%C3%A9'],
    ['/admin/../public/x', '/public/x'],
    ['http://evil.test/public/x?y=1', '/public/x?y=1'],
    ['/public/a..b/c.d', '/public/a..b/c.d'],
    ['/public/[...slug]', '/public/[...slug]'],
    // Characters an HTTP client percent-encodes (WHATWG path percent-encode
    // set) are encoded once, here: the path matched is the path forwarded.
    ['/public/a"b<c>d', '/public/a%22b%3Cc%3Ed'],
    ['/public/a%22b%3Cc%3Ed', '/public/a%22b%3Cc%3Ed'],
    ['/public/{x}/`y`/^z', '/public/%7Bx%7D/%60y%60/%5Ez'],
    ['/public/a|b', '/public/a|b'],
    // U+FF0E FULLWIDTH FULL STOP: an upstream applying NFKC would read "..";
    // it is forwarded exactly as matched (see README, Security model).
    ['/public/%ef%bc%8e%ef%bc%8e/admin', '/public/%EF%BC%8E%EF%BC%8E/admin'],
    // The query is forwarded as it came, whatever it holds.
    ['/public/a?x=../admin&y=%2e%2e/', '/public/a?x=../admin&y=%2e%2e/'],
    ['/public/a?q=100%', '/public/a?q=100%'],
    ['/public/a?next=/public/../admin', '/public/a?next=/public/../admin'],
    ['/public/a?x="<>`{}^|\'', '/public/a?x="<>`{}^|\''],
    // Long paths are not cut short by the router's parameter length limit.
    [`/public/${'a'.repeat(300)}`, `/public/${'a'.repeat(300)}`],
    [`/public/${'b/'.repeat(500)}c`, `/public/${'b/'.repeat(500)}c`]
  ]
  for (const [target, expected] of cases) await forwarded(t, gw, up, target, expected, {}, 'CONTRACT section 3 step 1 (matched path = forwarded path)')
})

t.test('protected routes whose configured path needs normalizing, before a public catch-all', async (t) => {
  // Requests are matched in normalized form; a route path that is not (a
  // `"` or a non-ASCII letter, both of which clients percent-encode) must be
  // read the same way, or its requests fall through to the catch-all.
  const up3 = await startUpstream()
  const g = await startGateway({
    name: 'sec-paths-config',
    config: {
      routes: [
        { path: '/q"uote', upstream: up3.url },
        { path: '/caf\u00e9', upstream: up3.url },
        { path: '/', upstream: up3.url, auth: 'none' }
      ]
    }
  })
  t.teardown(async () => { await g.close(); await up3.close() })
  const src = `${MISMATCH}; CONTRACT section 3 step 1`
  for (const target of ['/q"uote', '/q%22uote', '/q"uote/x', '/x/../q%22uote', '/caf%C3%A9', '/caf%c3%a9/x', 'http://h/caf%C3%A9']) {
    await refused(t, g, up3, target, 401, 'JOTGATE_TOKEN_MISSING', {}, src)
  }
  await forwarded(t, g, up3, '/q"uote', '/q%22uote', { token: userToken })
  await forwarded(t, g, up3, '/caf%c3%a9/x', '/caf%C3%A9/x', { token: userToken })
  await forwarded(t, g, up3, '/quote', '/quote', {}, 'the public catch-all (positive control)')
})

t.test('a path that is not valid UTF-8 once decoded is refused, never a 500', async (t) => {
  // Upstreams disagree on how to read it (replacement character, latin1, error).
  await refused(t, gw, up, '/public/%E0%A4', 400, 'JOTGATE_BAD_PATH', {}, OVERLONG)
  await refused(t, gw, up, '/public/%FF', 400, 'JOTGATE_BAD_PATH', {}, OVERLONG)
  await refused(t, gw, up, '/admin/%C0%AE%C0%AE/x', 400, 'JOTGATE_BAD_PATH', {}, OVERLONG)
  await forwarded(t, gw, up, '/public/%C3%A9', '/public/%C3%A9')
})

t.test('the upstream never saw /admin without an admin token', async (t) => {
  t.ok(up.seen.length > 0)
  for (const seen of up.seen) {
    const path = seen.url.split('?')[0]!
    // Read the path the way a WHATWG URL parser does (`%2e` segments are dots).
    // Decoding twice is not modelled: `%252e` is a literal `%2e` (RFC 3986 2.4).
    const resolved = new URL(path, 'http://upstream').pathname
    if (/^\/admin(\/|$)/i.test(path) || /^\/admin(\/|$)/i.test(resolved)) {
      t.equal(seen.headers['x-user-roles'], 'admin', `${seen.url}: carried the admin identity`)
    }
  }
})

t.test('rewrite, base paths, methods and require rules', async (t) => {
  const up2 = await startUpstream()
  const gw2 = await startGateway({
    name: 'sec-paths-routes',
    config: {
      routes: [
        { path: '/admin', upstream: up2.url, rewrite: '/internal/admin', methods: ['GET', 'POST'], require: { roles: ['admin'] } },
        { path: '/base', upstream: `${up2.url}/base/path`, auth: 'none' },
        { path: '/both', upstream: `${up2.url}/v2/`, rewrite: '/api', auth: 'none' },
        { path: '/strip', upstream: up2.url, rewrite: '/', auth: 'none' },
        { path: '/r/roles', upstream: up2.url, require: { roles: ['admin', 'ops'] } },
        { path: '/r/scopes', upstream: up2.url, require: { scopes: ['reports:read', 'reports:write'] } },
        { path: '/r/clients', upstream: up2.url, require: { clients: ['web'] } },
        { path: '/r/claims', upstream: up2.url, require: { claims: { is_root: true, 'address.country': 'FR' } } },
        { path: '/r/optional', upstream: up2.url, auth: 'optional', require: { roles: ['admin'] } }
      ]
    }
  })
  t.teardown(async () => { await gw2.close(); await up2.close() })

  t.test('rewrite replaces the matched prefix', async (t) => {
    await forwarded(t, gw2, up2, '/admin', '/internal/admin', { token: adminToken })
    await forwarded(t, gw2, up2, '/admin/', '/internal/admin/', { token: adminToken })
    await forwarded(t, gw2, up2, '/admin/x', '/internal/admin/x', { token: adminToken })
    await forwarded(t, gw2, up2, '/admin/x/y?z=1', '/internal/admin/x/y?z=1', { token: adminToken })
    await forwarded(t, gw2, up2, '/public/../admin/x', '/internal/admin/x', { token: adminToken })
    await refused(t, gw2, up2, '/public/../admin/x', 401, 'JOTGATE_TOKEN_MISSING', {}, DOTS)
    await refused(t, gw2, up2, '/adminx', 404, 'JOTGATE_ROUTE_NOT_FOUND', { token: adminToken }, 'CONTRACT section 2 (segment boundaries)')
    // The rewritten path cannot climb out of the rewrite target.
    await refused(t, gw2, up2, '/admin/../../internal/admin', 400, 'JOTGATE_BAD_PATH', { token: adminToken }, DOTS)
  })

  t.test('an upstream base path prefixes the forwarded path', async (t) => {
    await forwarded(t, gw2, up2, '/base', '/base/path/base')
    await forwarded(t, gw2, up2, '/base/x?q=1', '/base/path/base/x?q=1')
    await forwarded(t, gw2, up2, '/both/x', '/v2/api/x')
    await forwarded(t, gw2, up2, '/both', '/v2/api')
    await forwarded(t, gw2, up2, '/strip/x', '/x')
    await forwarded(t, gw2, up2, '/strip', '/')
    await forwarded(t, gw2, up2, '/base/%2e%2e/base/x', '/base/path/base/x')
  })

  t.test('methods: others get 405 with Allow', async (t) => {
    for (const method of ['DELETE', 'PUT', 'PATCH', 'HEAD', 'OPTIONS']) {
      const res = await refused(t, gw2, up2, '/admin/x', 405, 'JOTGATE_METHOD_NOT_ALLOWED', { token: adminToken, method }, 'RFC 9110 section 15.5.6')
      t.equal(res.headers.allow?.[0], 'GET, POST', `${method}: Allow`)
    }
    await forwarded(t, gw2, up2, '/admin/x', '/internal/admin/x', { token: adminToken, method: 'POST' })
  })

  t.test('require: 403 with insufficient_scope', async (t) => {
    const cases: Array<[string, Record<string, unknown>, boolean]> = [
      ['/r/roles', { roles: ['ops'] }, true],
      ['/r/roles', { roles: 'admin' }, true],
      ['/r/roles', { roles: ['user'] }, false],
      ['/r/roles', { roles: 'admin,ops' }, false],
      ['/r/roles', { roles: undefined }, false],
      ['/r/roles', { roles: { admin: true } }, false],
      ['/r/scopes', { scope: 'reports:write x reports:read' }, true],
      ['/r/scopes', { scp: ['reports:read', 'reports:write'] }, true],
      ['/r/scopes', { scope: 'reports:read' }, false],
      ['/r/scopes', { scope: 'reports:read,reports:write' }, false],
      ['/r/clients', { azp: 'web' }, true],
      ['/r/clients', { azp: 'android' }, false],
      ['/r/clients', { azp: undefined }, false],
      ['/r/claims', { is_root: true, address: { country: 'FR' } }, true],
      ['/r/claims', { is_root: 'true', address: { country: 'FR' } }, false],
      ['/r/claims', { is_root: true, address: { country: 'DE' } }, false],
      ['/r/claims', { is_root: true, 'address.country': 'FR' }, false]
    ]
    for (const [path, extra, allowed] of cases) {
      const token = mint({ payload: claims(extra) })
      if (allowed) {
        await forwarded(t, gw2, up2, path, path, { token })
      } else {
        const res = await refused(t, gw2, up2, path, 403, 'JOTGATE_FORBIDDEN', { token }, 'RFC 6750 section 3.1')
        t.equal(res.headers['www-authenticate']?.[0], 'Bearer realm="jotgate", error="insufficient_scope"', `${path} ${JSON.stringify(extra)}: challenge`)
      }
    }
    // An optional route with a rule: no token means no claims to meet it.
    await refused(t, gw2, up2, '/r/optional', 401, 'JOTGATE_TOKEN_MISSING', {}, 'CONTRACT section 3 step 3 (optional with require rules)')
    await forwarded(t, gw2, up2, '/r/optional', '/r/optional', { token: adminToken })
  })
})
