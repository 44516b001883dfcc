/**
 * Attack family: headers (CONTRACT section 3 steps 2, 3, 7 and 8). Identity
 * headers cannot be forged: whatever a client sends as X-User-*, X-Client-Id,
 * X-Jwt-* or a route's mapped header, in any case, repeated, with `_` for
 * `-`, or named in `Connection`, the upstream sees only what the verified
 * token says, or nothing. Claim values cannot add or break a header. Host
 * and Authorization are single and bounded; requests whose framing two
 * parsers could read differently (Content-Length with Transfer-Encoding)
 * are refused before anything is forwarded. Also the upstream leg: failures
 * map to 502/504, answers pass back unchanged, bodies stream both ways.
 * Requests go over raw sockets so headers reach the gateway exactly as written.
 */
import t from 'tap'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { startUpstream, type SeenRequest } from '../helpers/upstream.js'
import { startGateway } from '../helpers/gateway.js'
import { freePort } from '../helpers/redis.js'
import { claims, mint, rawRequest, tamper, type RawResponse } from '../helpers/zoo.js'
import { INVALID_TOKEN, refusedRaw, sendRaw, throughRaw, type HeaderList, type TapTest } from './kit.js'

const SPOOF = 'CWE-290 (spoofed identity headers); oauth2-proxy GHSA-vjrc-mh2v-45x6'
const HOP = 'RFC 9110 section 7.6.1 (Connection); "hop-by-hop header abuse" (Nathan Davison, 2019)'
const SMUGGLING = 'RFC 9112 section 6.3; CVE-2019-18277 (HAProxy); PortSwigger "HTTP request smuggling"'
const INJECTION = 'CWE-113 (header injection); RFC 9110 section 5.5'
const OVERRIDE = 'CWE-650 (trusting HTTP permission methods on the server side); Express method-override, Symfony http_method_override; CVE-2018-14773 (Symfony X-Original-URL / X-Rewrite-URL)'

// ---------------------------------------------------------------------------
// Spoofed identity headers (formerly test/integration/spoofing.test.ts).

const SPOOFED: HeaderList = [
  ['X-User-Id', 'evil-1'],
  ['x-user-id', 'evil-2'],
  ['X-USER-ID', 'evil-3'],
  ['x-user-roles', 'evil-admin'],
  ['X-User-Roles', 'evil-root'],
  ['X-USER-ANYTHING', 'evil-anything'],
  ['X-Client-Id', 'evil-client'],
  ['x-client-id', 'evil-client-2'],
  ['X-Jwt-Foo', 'evil-jwt'],
  ['x-jwt-claims', 'evil-jwt-2'],
  ['X-Admin', 'evil-admin-header'],
  ['x-ADMIN', 'evil-admin-header-2'],
  // WSGI/CGI upstreams read `X_User_Id` as HTTP_X_USER_ID, the same as `X-User-Id`.
  ['X_User_Id', 'evil-underscore'],
  ['x_admin', 'evil-underscore-admin'],
  // A client naming identity headers as hop-by-hop must not remove ours.
  ['Connection', 'keep-alive, x-user-id, X-Admin, x-user-roles, x-request-id, x-forwarded-for']
]

/** Every upper/lower-case spelling of `name`, each with an evil value. */
function everyCase (name: string): HeaderList {
  const letters = [...name].map((c, i) => [c, i] as const).filter(([c]) => c.toLowerCase() !== c.toUpperCase())
  const out: HeaderList = []
  for (let bits = 0; bits < 1 << letters.length; bits++) {
    const chars = [...name.toLowerCase()]
    letters.forEach(([c, i], k) => { if ((bits & (1 << k)) !== 0) chars[i] = c.toUpperCase() })
    out.push([chars.join(''), `evil-case-${bits}`])
  }
  return out
}

/** Lower-case header names that only the gateway may set. */
const IDENTITY = /^(x-user-|x-client-id$|x-jwt-|x-admin$|x_user_|x_admin$|x_client_id$)/

function identityHeaders (seen: SeenRequest): Array<[string, string]> {
  const out: Array<[string, string]> = []
  for (let i = 0; i < seen.rawHeaders.length; i += 2) {
    const name = seen.rawHeaders[i]!.toLowerCase()
    if (IDENTITY.test(name)) out.push([name, seen.rawHeaders[i + 1]!])
  }
  return out
}

function noEvil (t: TapTest, seen: SeenRequest, label: string): void {
  const leaked = seen.rawHeaders.filter((v, i) => i % 2 === 1 && v.includes('evil'))
  t.same(leaked, [], `${label}: no spoofed value reached the upstream`)
}

const up = await startUpstream()
const routes = [
  { path: '/none', upstream: up.url, auth: 'none' },
  { path: '/opt', upstream: up.url, auth: 'optional' },
  { path: '/req', upstream: up.url, headers: { 'X-Admin': 'sub' } },
  { path: '/fwd', upstream: up.url, forwardAuthorization: true }
]
const gw = await startGateway({ name: 'sec-headers-spoof', config: { routes } })
const closedPort = await freePort()
// A second gateway with small header limits and the upstream-leg routes.
const hgw = await startGateway({
  name: 'sec-headers',
  config: {
    server: { host: '127.0.0.1', port: 0, maxHeaderBytes: 2048, upstreamTimeout: '1s' },
    routes: [
      { path: '/down', upstream: `http://127.0.0.1:${closedPort}`, auth: 'none' },
      { path: '/open', upstream: up.url, auth: 'none' },
      { path: '/nested', upstream: up.url, headers: { 'X-Country': 'address.country' } },
      { path: '/get-only', upstream: up.url, methods: ['GET', 'HEAD'] },
      { path: '/', upstream: up.url }
    ]
  }
})
t.teardown(async () => { await gw.close(); await hgw.close(); await up.close() })

const payload = claims({ sub: 'alice', roles: ['user', 'ops'], azp: 'web' })
const token = mint({ payload })
const bearer: HeaderList = [['Authorization', `Bearer ${token}`]]

t.test('auth none: spoofed identity headers are removed', async (t) => {
  const seen = await throughRaw(t, gw, up, '/none/x', SPOOFED, `none [${SPOOF}]`)
  t.same(identityHeaders(seen), [], 'no identity header at all')
  noEvil(t, seen, 'none')
  // A valid token on an auth: none route is not verified, so it gives no identity either.
  const withToken = await throughRaw(t, gw, up, '/none/x', [...SPOOFED, ...bearer], 'none with token')
  t.same(identityHeaders(withToken), [], 'no identity header from an unverified token')
  noEvil(t, withToken, 'none with token')
})

t.test('auth optional without a token: no identity headers', async (t) => {
  const seen = await throughRaw(t, gw, up, '/opt/x', SPOOFED, `optional [${SPOOF}]`)
  t.same(identityHeaders(seen), [], 'no identity header at all')
  noEvil(t, seen, 'optional')
})

t.test('auth optional with a token: only the token\'s values', async (t) => {
  const seen = await throughRaw(t, gw, up, '/opt/x', [...SPOOFED, ...bearer], `optional+token [${SPOOF}]`)
  t.same(identityHeaders(seen).sort(), [
    ['x-client-id', 'web'],
    ['x-user-id', 'alice'],
    ['x-user-roles', 'user,ops']
  ], 'exactly the mapped claims, once each; X-Admin belongs to another route')
  noEvil(t, seen, 'optional+token')
  t.equal(seen.headers.authorization, undefined, 'token not forwarded')
})

t.test('auth required with a token: the route\'s own mapping too', async (t) => {
  const seen = await throughRaw(t, gw, up, '/req/x', [...SPOOFED, ...bearer], `required+token [${SPOOF}; ${HOP}]`)
  t.same(identityHeaders(seen).sort(), [
    ['x-admin', 'alice'],
    ['x-client-id', 'web'],
    ['x-user-id', 'alice'],
    ['x-user-roles', 'user,ops']
  ], 'exactly the mapped claims, once each')
  noEvil(t, seen, 'required+token')
  t.match(seen.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'X-Request-Id set despite Connection naming it')
  t.equal(seen.headers['x-forwarded-for'], '127.0.0.1', 'X-Forwarded-For set despite Connection naming it')
  // A token without the mapped claims gives no header, never the spoofed one.
  const bare = mint({ payload: claims({ sub: 'bob', roles: undefined }) })
  const seenBare = await throughRaw(t, gw, up, '/req/x', [...SPOOFED, ['Authorization', `Bearer ${bare}`]], 'required+token without roles/azp')
  t.same(identityHeaders(seenBare).sort(), [['x-admin', 'bob'], ['x-user-id', 'bob']], 'absent claims give no header')
  noEvil(t, seenBare, 'required+token without roles/azp')
})

t.test('every case spelling and duplicates of the identity headers', async (t) => {
  // All 2^7 spellings of X-User-Id and 2^6 of X-Admin; X-Client-Id (2^9)
  // with one upper-case letter at a time; underscore forms of some.
  const userId = everyCase('X-User-Id')
  const admin = everyCase('X-Admin')
  const clientId = [...'x-client-id'].map((c, i) => ['x-client-id'.slice(0, i) + c.toUpperCase() + 'x-client-id'.slice(i + 1), `evil-client-${i}`] as const)
  const underscored: HeaderList = userId.slice(0, 16).map(([n, v]) => [n.replace(/-/g, '_'), `${v}-underscore`])
  const all = [...userId, ...admin, ...clientId, ...underscored]
  t.equal(new Set(userId.map(([n]) => n)).size, userId.length, `${userId.length} distinct spellings of X-User-Id`)
  for (const [label, path, headers, expected] of [
    ['auth none', '/none/x', all, []],
    ['optional, no token', '/opt/x', all, []],
    ['required with a token', '/req/x', [...all, ...bearer], [['x-admin', 'alice'], ['x-client-id', 'web'], ['x-user-id', 'alice'], ['x-user-roles', 'user,ops']]]
  ] as const) {
    const seen = await throughRaw(t, gw, up, path, [...headers], `${label}: ${headers.length} spoofed lines [${SPOOF}]`)
    t.same(identityHeaders(seen).sort(), expected, `${label}: only the gateway's identity headers, once each`)
    noEvil(t, seen, label)
  }
  // Connection naming identity headers in every case, alone, on its own line twice.
  const hop = await throughRaw(t, gw, up, '/req/x', [['Connection', 'X-USER-ID'], ['connection', 'x-admin, X-User-Roles'], ['X-User-Id', 'evil'], ...bearer], `Connection naming identity headers [${HOP}]`)
  t.equal(hop.headers['x-user-id'], 'alice', 'X-User-Id is the token\'s')
  t.equal(hop.headers['x-admin'], 'alice', 'X-Admin is the token\'s')
  t.equal(hop.headers['x-user-roles'], 'user,ops', 'X-User-Roles is the token\'s')
  noEvil(t, hop, 'Connection')
})

t.test('a refused request never reaches the upstream, spoofed headers or not', async (t) => {
  const bad = tamper(token)
  await refusedRaw(t, gw, up, '/req/x', [...SPOOFED, ['Authorization', `Bearer ${bad}`]], 401, 'JOTGATE_TOKEN_SIGNATURE', `required, bad token [${SPOOF}]`)
  await refusedRaw(t, gw, up, '/opt/x', [...SPOOFED, ['Authorization', `Bearer ${bad}`]], 401, 'JOTGATE_TOKEN_SIGNATURE', `optional, bad token [${SPOOF}]`)
  await refusedRaw(t, gw, up, '/req/x', SPOOFED, 401, 'JOTGATE_TOKEN_MISSING', `required, no token [${SPOOF}]`)
  // Positive control on the same route.
  await throughRaw(t, gw, up, '/req/x', bearer, 'required, good token')
})

t.test('forwardAuthorization', async (t) => {
  const fwd = await throughRaw(t, gw, up, '/fwd/x', bearer, 'forwardAuthorization: true')
  t.equal(fwd.headers.authorization, `Bearer ${token}`, 'the token is forwarded')
  t.equal(fwd.headers['x-user-id'], 'alice')
  const req = await throughRaw(t, gw, up, '/req/x', bearer, 'default')
  t.equal(req.headers.authorization, undefined, 'the token is not forwarded by default [RFC 6750 section 5.3]')
})

t.test('X-Request-Id: kept when 1-128 visible ASCII, else replaced', async (t) => {
  const cases: Array<[string, string, boolean]> = [
    ['simple', 'req-123_ABC.xyz', true],
    ['128 characters', 'a'.repeat(128), true],
    ['every visible ASCII', '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~', true],
    ['129 characters', 'b'.repeat(129), false],
    ['with a space', 'abc def', false],
    ['non-ASCII', 'caf\u00e9', false]
  ]
  for (const [label, id, kept] of cases) {
    const seen = await throughRaw(t, gw, up, '/none/x', [['X-Request-Id', id]], `X-Request-Id ${label} [CWE-117 (log injection)]`)
    if (kept) t.equal(seen.headers['x-request-id'], id, `${label}: kept`)
    else t.match(seen.headers['x-request-id'], /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, `${label}: replaced by a generated id`)
  }
  const seen = await throughRaw(t, gw, up, '/none/x', [], 'no X-Request-Id')
  t.match(seen.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'generated when absent')
  // Two incoming ids: one is generated (Node joins them, and ", " holds a space).
  const two = await throughRaw(t, gw, up, '/none/x', [['X-Request-Id', 'one'], ['X-Request-Id', 'two']], 'two X-Request-Id')
  t.equal(two.rawHeaders.filter((_, i) => i % 2 === 0 && two.rawHeaders[i]!.toLowerCase() === 'x-request-id').length, 1, 'exactly one X-Request-Id upstream')
})

const FORWARDED_IN: HeaderList = [
  ['Host', 'jotgate.test'],
  ['X-Forwarded-For', '1.2.3.4'],
  ['X-Forwarded-Proto', 'https'],
  ['X-Forwarded-Host', 'front.test'],
  ['Forwarded', 'for=1.2.3.4;proto=https;host=front.test']
]

t.test('trustProxy false: incoming X-Forwarded-* replaced, Forwarded dropped', async (t) => {
  const src = 'RFC 7239 section 8.1 (spoofed Forwarded); CWE-348'
  for (const path of ['/none/x', '/req/x']) {
    const seen = await throughRaw(t, gw, up, path, [...FORWARDED_IN, ...bearer], `trustProxy false ${path} [${src}]`)
    t.equal(seen.headers['x-forwarded-for'], '127.0.0.1', `${path}: X-Forwarded-For is the peer`)
    t.equal(seen.headers['x-forwarded-proto'], 'http', `${path}: X-Forwarded-Proto`)
    t.equal(seen.headers['x-forwarded-host'], 'jotgate.test', `${path}: X-Forwarded-Host is the Host`)
    t.equal(seen.headers.forwarded, undefined, `${path}: Forwarded dropped`)
  }
  // Repeated X-Forwarded-For lines are replaced as a whole.
  const seen = await throughRaw(t, gw, up, '/none/x', [['X-Forwarded-For', '9.9.9.9'], ['x-forwarded-for', '8.8.8.8']], 'repeated X-Forwarded-For')
  t.equal(seen.headers['x-forwarded-for'], '127.0.0.1')
})

t.test('trustProxy true: ours appended to what the proxy in front sent', async (t) => {
  const trusted = await startGateway({
    name: 'sec-headers-trust',
    config: { server: { host: '127.0.0.1', port: 0, trustProxy: true }, routes }
  })
  t.teardown(() => trusted.close())
  const spoofedNoConnection = SPOOFED.filter(([n]) => n !== 'Connection')
  const seen = await throughRaw(t, trusted, up, '/req/x', [...FORWARDED_IN, ...spoofedNoConnection, ...bearer], 'trustProxy true')
  t.equal(seen.headers['x-forwarded-for'], '1.2.3.4, 127.0.0.1')
  t.equal(seen.headers['x-forwarded-proto'], 'https, http')
  t.equal(seen.headers['x-forwarded-host'], 'front.test, jotgate.test')
  t.equal(seen.headers.forwarded, 'for=1.2.3.4;proto=https;host=front.test', 'Forwarded kept when trusted')
  // Trusting the proxy's address headers never means trusting identity headers.
  t.equal(seen.headers['x-user-id'], 'alice')
  t.equal(seen.headers['x-admin'], 'alice')
  const two = await throughRaw(t, trusted, up, '/none/x', [['X-Forwarded-For', '1.1.1.1'], ['X-Forwarded-For', '2.2.2.2']], 'trusted, repeated X-Forwarded-For')
  t.equal(two.headers['x-forwarded-for'], '1.1.1.1, 2.2.2.2, 127.0.0.1')
  // Named in Connection, the incoming one is hop-by-hop (RFC 9110 section 7.6.1) and dropped before ours is added.
  const hop = await throughRaw(t, trusted, up, '/req/x', [...FORWARDED_IN, ...SPOOFED, ...bearer], `trusted, Connection names X-Forwarded-For [${HOP}]`)
  t.equal(hop.headers['x-forwarded-for'], '127.0.0.1')
  t.equal(hop.headers['x-user-id'], 'alice', 'Connection naming X-User-Id does not remove ours')
  noEvil(t, hop, 'trusted, Connection trick')
  const none = await throughRaw(t, trusted, up, '/none/x', [], 'trusted, no incoming X-Forwarded-For')
  t.equal(none.headers['x-forwarded-for'], '127.0.0.1')
})

// ---------------------------------------------------------------------------
// Authorization, Host, sizes, framing, claim values, the upstream leg
// (formerly test/integration/headers.test.ts, with more cases).

const hToken = mint({ payload: claims({ sub: 'alice' }) })

async function hRefused (t: TapTest, target: string, headers: HeaderList, status: number, code: string, label: string): Promise<RawResponse> {
  return refusedRaw(t, hgw, up, target, headers, status, code, label)
}

async function hThrough (t: TapTest, target: string, headers: HeaderList, label: string): Promise<SeenRequest> {
  return throughRaw(t, hgw, up, target, headers, label)
}

t.test('the Authorization header', async (t) => {
  const dup = 'RFC 9110 section 5.3 (a singleton field); CONTRACT section 3 step 3'
  const cases: Array<[string, HeaderList, string, string]> = [
    ['two Authorization headers', [['Authorization', `Bearer ${hToken}`], ['Authorization', `Bearer ${hToken}`]], 'JOTGATE_TOKEN_AMBIGUOUS', dup],
    ['two Authorization headers, mixed case', [['authorization', `Bearer ${hToken}`], ['AUTHORIZATION', 'Bearer x.y.z']], 'JOTGATE_TOKEN_AMBIGUOUS', dup],
    ['a good and a bad Authorization header', [['Authorization', 'Basic Zm9vOmJhcg=='], ['Authorization', `Bearer ${hToken}`]], 'JOTGATE_TOKEN_AMBIGUOUS', dup],
    ['an empty and a good Authorization header', [['Authorization', ''], ['Authorization', `Bearer ${hToken}`]], 'JOTGATE_TOKEN_AMBIGUOUS', dup],
    ['two tokens in one header', [['Authorization', `Bearer ${hToken}, Bearer ${hToken}`]], 'JOTGATE_TOKEN_AMBIGUOUS', 'RFC 7235 section 4.2'],
    ['Basic scheme', [['Authorization', 'Basic Zm9vOmJhcg==']], 'JOTGATE_TOKEN_MALFORMED', 'RFC 6750 section 2.1'],
    ['token without scheme', [['Authorization', hToken]], 'JOTGATE_TOKEN_MALFORMED', 'RFC 6750 section 2.1'],
    ['Bearer with a space inside the token', [['Authorization', `Bearer ${hToken.slice(0, 20)} ${hToken.slice(20)}`]], 'JOTGATE_TOKEN_MALFORMED', 'RFC 6750 section 2.1 (b64token)'],
    ['Bearer with a tab before the token', [['Authorization', `Bearer\t${hToken}`]], 'JOTGATE_TOKEN_MALFORMED', 'RFC 6750 section 2.1 (one SP)'],
    ['Bearer: with a colon', [['Authorization', `Bearer: ${hToken}`]], 'JOTGATE_TOKEN_MALFORMED', 'RFC 6750 section 2.1']
  ]
  for (const [label, headers, code, src] of cases) {
    const res = await hRefused(t, '/x', headers, 401, code, `${label} [${src}]`)
    t.equal(res.headers['www-authenticate']?.[0], INVALID_TOKEN, `${label}: challenge`)
  }
  const empty = await hRefused(t, '/x', [['Authorization', 'Bearer']], 401, 'JOTGATE_TOKEN_MISSING', 'Bearer without token [RFC 6750 section 3.1]')
  t.equal(empty.headers['www-authenticate']?.[0], 'Bearer realm="jotgate"', 'no error attribute without a token')
  // Over maxHeaderBytes (2048 here): 431 before any token is read.
  await hRefused(t, '/x', [['Authorization', `Bearer ${mint({ payload: claims({ pad: 'x'.repeat(2000) }) })}`]], 431, 'JOTGATE_HEADERS_TOO_LARGE', 'an oversized Authorization header [RFC 6585 section 5; CWE-400]')

  // RFC 7235 section 2.1: the scheme is case-insensitive.
  for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
    const seen = await hThrough(t, '/x', [['Authorization', `${scheme} ${hToken}`]], `scheme ${scheme}`)
    t.equal(seen.headers['x-user-id'], 'alice', `${scheme}: identity forwarded`)
  }
  await hThrough(t, '/x', [['Authorization', `Bearer  ${hToken} `]], 'extra spaces around the token')
})

t.test('the Host header: missing, repeated, oversized', async (t) => {
  const host = 'RFC 9112 section 3.2 (exactly one Host); PortSwigger "HTTP Host header attacks"'
  const cases: Array<[string, string]> = [
    ['two Host headers', 'GET /open/x HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\nConnection: close\r\n\r\n'],
    ['two Host headers, mixed case', 'GET /open/x HTTP/1.1\r\nHost: a.test\r\nHOST: b.test\r\nConnection: close\r\n\r\n'],
    ['two Host headers, the same value', 'GET /open/x HTTP/1.1\r\nhost: a.test\r\nHost: a.test\r\nConnection: close\r\n\r\n'],
    ['no Host in HTTP/1.1', 'GET /open/x HTTP/1.1\r\nConnection: close\r\n\r\n']
  ]
  for (const [label, text] of cases) {
    const before = up.seen.length
    const res = await rawRequest(hgw.url, text)
    t.equal(res.status, 400, `${label}: 400 [${host}]`)
    t.equal(res.json?.code, 'JOTGATE_BAD_REQUEST', `${label}: JOTGATE_BAD_REQUEST`)
    t.equal(up.seen.length, before, `${label}: upstream saw nothing`)
  }
  await hRefused(t, '/open/x', [['Host', `${'h'.repeat(3000)}.test`]], 431, 'JOTGATE_HEADERS_TOO_LARGE', 'an oversized Host [RFC 6585 section 5]')
  const seen = await hThrough(t, '/open/x', [['Host', 'front.test:8443']], 'one Host (positive control)')
  t.equal(seen.headers['x-forwarded-host'], 'front.test:8443', 'X-Forwarded-Host is the one Host')
  // RFC 9112 section 3.2: a Host that is not uri-host [":" port] is a 400 too.
  const invalid = await sendRaw(hgw, '/open/x', [['Host', 'evil.test/admin?x']])
  t.equal(invalid.status, 400, 'a Host holding / and ? is refused')
})

t.test('request headers over server.maxHeaderBytes: 431', async (t) => {
  const before = up.seen.length
  const res = await sendRaw(hgw, '/open/x', [['X-Big', 'a'.repeat(4096)]])
  t.equal(res.status, 431, '[RFC 6585 section 5; CWE-400]')
  t.equal(res.json?.statusCode, 431)
  t.equal(res.json?.code, 'JOTGATE_HEADERS_TOO_LARGE')
  const many = await sendRaw(hgw, '/open/x', Array.from({ length: 40 }, (_, i) => [`X-H${i}`, 'v'.repeat(80)] as const))
  t.equal(many.status, 431, 'many small headers add up')
  t.equal(many.json?.code, 'JOTGATE_HEADERS_TOO_LARGE')
  t.equal(up.seen.length, before, 'upstream saw nothing')
  // Positive control: 1 KiB of headers passes, with a token.
  const seen = await hThrough(t, '/x', [['X-Big', 'a'.repeat(1024)], ['Authorization', `Bearer ${hToken}`]], '1 KiB header')
  t.equal(seen.headers['x-big'], 'a'.repeat(1024))
})

t.test('conflicting Content-Length / Transfer-Encoding and other framing tricks: 400, nothing forwarded', async (t) => {
  // The smuggled request targets an auth: none path, so had it been read as
  // a second request the upstream would have recorded it.
  const smuggled = 'GET /open/smuggled HTTP/1.1\r\nHost: a\r\n\r\n'
  const post = (headers: string, body: string, version = '1.1'): string => `POST /open/x HTTP/${version}\r\nHost: a\r\n${headers}\r\n${body}`
  const bad: Array<[string, string, string]> = [
    ['CL.TE: Content-Length with Transfer-Encoding', post('Content-Length: 5\r\nTransfer-Encoding: chunked\r\n', `0\r\n\r\n${smuggled}`), SMUGGLING],
    ['TE.CL: Transfer-Encoding first', post('Transfer-Encoding: chunked\r\nContent-Length: 40\r\n', `0\r\n\r\n${smuggled}`), SMUGGLING],
    ['two different Content-Length', post('Content-Length: 1\r\nContent-Length: 2\r\n', 'ab'), 'RFC 9112 section 6.3 item 5'],
    ['two equal Content-Length lines', post('Content-Length: 2\r\nContent-Length: 2\r\n', 'ab'), 'RFC 9112 section 6.3 item 5'],
    ['Content-Length: 2, 2', post('Content-Length: 2, 2\r\n', 'ab'), 'RFC 9110 section 8.6'],
    ['Content-Length: +2', post('Content-Length: +2\r\n', 'ab'), 'RFC 9110 section 8.6 (1*DIGIT)'],
    ['Content-Length: -1', post('Content-Length: -1\r\n', 'ab'), 'RFC 9110 section 8.6'],
    ['Content-Length: 0x2', post('Content-Length: 0x2\r\n', 'ab'), 'RFC 9110 section 8.6'],
    ['Transfer-Encoding twice', post('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', `0\r\n\r\n${smuggled}`), SMUGGLING],
    ['Transfer-Encoding: chunked, identity', post('Transfer-Encoding: chunked, identity\r\n', `0\r\n\r\n${smuggled}`), 'RFC 9112 section 6.3 item 4 (chunked last)'],
    ['Transfer-Encoding: identity, chunked with Content-Length', post('Content-Length: 5\r\nTransfer-Encoding: identity, chunked\r\n', `0\r\n\r\n${smuggled}`), SMUGGLING],
    ['Transfer-Encoding: xchunked', post('Transfer-Encoding: xchunked\r\n', `0\r\n\r\n${smuggled}`), 'PortSwigger "obfuscating the TE header"'],
    ['Transfer-Encoding:<TAB>chunked with Content-Length', post('Content-Length: 5\r\nTransfer-Encoding:\tchunked\r\n', `0\r\n\r\n${smuggled}`), 'PortSwigger "obfuscating the TE header"'],
    ['Transfer-Encoding with a space before the colon', post('Content-Length: 5\r\nTransfer-Encoding : chunked\r\n', `0\r\n\r\n${smuggled}`), 'RFC 9112 section 5.1; CVE-2019-18277'],
    ['Transfer-Encoding on HTTP/1.0', post('Content-Length: 5\r\nTransfer-Encoding: chunked\r\n', `0\r\n\r\n${smuggled}`, '1.0'), 'RFC 9112 section 6.1'],
    ['a chunk size that is not hex', post('Transfer-Encoding: chunked\r\n', `zz\r\nhello\r\n0\r\n\r\n${smuggled}`), 'RFC 9112 section 7.1'],
    ['a bare LF in a chunk extension', post('Transfer-Encoding: chunked\r\n', `5;a\nb\r\nhello\r\n0\r\n\r\n${smuggled}`), 'CVE-2023-30589 (Node llhttp)'],
    ['space before the colon', 'GET /open/x HTTP/1.1\r\nHost: a\r\nX-User-Id : evil\r\n\r\n', 'RFC 9112 section 5.1'],
    ['bare LF in a header value', 'GET /open/x HTTP/1.1\r\nHost: a\r\nX-A: 1\nX-User-Id: evil\r\n\r\n', 'RFC 9112 section 2.2; CWE-113'],
    ['obs-fold continuation line', 'GET /open/x HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n X-User-Id: evil\r\n\r\n', 'RFC 9112 section 5.2'],
    ['a NUL in a header value', 'GET /open/x HTTP/1.1\r\nHost: a\r\nX-A: a\u0000b\r\n\r\n', 'RFC 9110 section 5.5'],
    ['a header name that is not a token', 'GET /open/x HTTP/1.1\r\nHost: a\r\nX-User(Id): evil\r\n\r\n', 'RFC 9110 section 5.1'],
    ['HTTP/1.2', 'GET /open/x HTTP/1.2\r\nHost: a\r\n\r\n', 'RFC 9112 section 2.3'],
    ['the HTTP/2 preface on an HTTP/1.1 port', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'RFC 9113 section 3.4 (h2c smuggling)']
  ]
  for (const [label, text, src] of bad) {
    const before = up.seen.length
    const res = await rawRequest(hgw.url, text)
    t.equal(res.status, 400, `${label}: 400 [${src}]`)
    t.equal(res.json?.statusCode, 400, `${label}: statusCode`)
    t.equal(res.json?.code, 'JOTGATE_BAD_REQUEST', `${label}: code`)
    t.equal(up.seen.length, before, `${label}: upstream saw nothing`)
  }
  t.notOk(up.seen.some((s) => s.url.includes('smuggled')), 'no smuggled request ever reached the upstream')
  // Positive controls: each framing on its own.
  const cl = await throughRaw(t, hgw, up, '/open/x', [], 'Content-Length alone', 'POST', 'hello')
  t.equal(cl.body, 'hello', 'the body, intact')
  const chunked = await rawRequest(hgw.url, post('Transfer-Encoding: chunked\r\nConnection: close\r\n', '5\r\nhello\r\n0\r\n\r\n'))
  t.equal(chunked.status, 200, 'Transfer-Encoding: chunked alone')
  t.equal(up.seen.at(-1)?.body, 'hello', 'the chunked body, intact')
})

t.test('hop-by-hop request headers are not forwarded and break nothing', async (t) => {
  const cases: Array<[string, HeaderList]> = [
    ['Keep-Alive', [['Keep-Alive', 'timeout=5']]],
    ['Upgrade without Connection: upgrade', [['Upgrade', 'h2c']]],
    ['Proxy-Connection', [['Proxy-Connection', 'keep-alive']]],
    ['TE', [['TE', 'trailers']]]
  ]
  for (const [label, headers] of cases) {
    const seen = await hThrough(t, '/x', [...headers, ['Authorization', `Bearer ${hToken}`]], `${label} [${HOP}]`)
    t.equal(seen.headers[headers[0]![0].toLowerCase()], undefined, `${label}: not forwarded`)
    t.equal(seen.headers['x-user-id'], 'alice', `${label}: identity still set`)
  }
  // curl sends Expect: 100-continue for bodies over 1 KiB.
  const body = 'x'.repeat(2048)
  const before = up.seen.length
  const res = await sendRaw(hgw, '/x', [['Authorization', `Bearer ${hToken}`], ['Expect', '100-continue']], 'POST', body)
  t.equal(res.status, 200, `Expect: 100-continue: 200 (${res.body.slice(0, 80)})`)
  t.equal(up.seen.length, before + 1)
  t.equal(up.seen.at(-1)?.body, body, 'body intact')
  t.equal(up.seen.at(-1)?.headers.expect, undefined, 'Expect answered here, not forwarded')
})

t.test('method and path override headers cannot widen a route', async (t) => {
  const auth: HeaderList = [['Authorization', `Bearer ${hToken}`]]
  // A route limited to GET: a header asking the upstream to treat the GET as another method is refused.
  for (const [name, value] of [['X-HTTP-Method-Override', 'DELETE'], ['x-http-method-override', 'put'], ['X-HTTP-Method', 'POST'], ['X-Method-Override', 'PATCH']] as const) {
    const res = await refusedRaw(t, hgw, up, '/get-only/x', [...auth, [name, value]], 405, 'JOTGATE_METHOD_NOT_ALLOWED', `${name}: ${value} [${OVERRIDE}]`)
    t.same(res.headers.allow, ['GET, HEAD'], `${name}: Allow names the route's methods`)
  }
  await refusedRaw(t, hgw, up, '/get-only/x', [...auth, ['X-HTTP-Method-Override', 'GET'], ['X-HTTP-Method-Override', 'DELETE']], 405, 'JOTGATE_METHOD_NOT_ALLOWED', `repeated, one of them not allowed [${OVERRIDE}]`)
  // Without a token the refusal is still the method's: nothing is learnt about the token first.
  await refusedRaw(t, hgw, up, '/get-only/x', [['X-HTTP-Method-Override', 'DELETE']], 405, 'JOTGATE_METHOD_NOT_ALLOWED', `no token [${OVERRIDE}]`)
  // Positive controls: an override naming an allowed method, and any override on a route without `methods`.
  const allowed = await hThrough(t, '/get-only/x', [...auth, ['X-HTTP-Method-Override', 'get']], 'override naming an allowed method')
  t.equal(allowed.headers['x-http-method-override'], 'get', 'an allowed override is forwarded as it came')
  await hThrough(t, '/x', [...auth, ['X-HTTP-Method-Override', 'DELETE']], 'a route without methods: the upstream decides')
  // Path overrides are never forwarded, on any route.
  for (const name of ['X-Original-URL', 'X-Rewrite-URL', 'x-original-url']) {
    const seen = await hThrough(t, '/open/x', [[name, '/admin']], `${name} [${OVERRIDE}]`)
    t.equal(seen.headers[name.toLowerCase()], undefined, `${name}: not forwarded`)
    t.equal(seen.url, '/open/x', `${name}: the matched path is the one forwarded`)
  }
})

t.test('claim values that could break a header are refused', async (t) => {
  const unsafe: Array<[string, Record<string, unknown>, string]> = [
    ['CR LF in sub', { sub: 'a\r\nX-Evil: 1' }, INJECTION],
    ['LF in sub', { sub: 'a\nX-Evil: 1' }, INJECTION],
    ['CR alone in sub', { sub: 'a\rX-Evil: 1' }, INJECTION],
    ['NUL in sub', { sub: 'a\u0000b' }, INJECTION],
    ['TAB in sub', { sub: 'a\tb' }, 'RFC 9110 section 5.5 (a value cannot keep a TAB at its edges)'],
    ['DEL in sub', { sub: 'a\u007fb' }, INJECTION],
    ['CR LF in a role', { roles: ['user', 'x\r\nX-Evil: 1'] }, INJECTION],
    ['CR LF in azp', { azp: 'web\r\n\r\nGET / HTTP/1.1' }, `${INJECTION}; CWE-444 (response splitting)`],
    ['CR LF in an object key of roles', { roles: { 'a\r\nX-Evil': 1 } }, INJECTION],
    ['LF deep in a nested role value', { roles: [{ a: ['ok', 'x\ny'] }] }, INJECTION],
    ['lone surrogate in sub', { sub: 'a\ud800b' }, 'RFC 3629 section 3 (no surrogates in UTF-8)']
  ]
  for (const [label, extra, src] of unsafe) {
    const bad = mint({ payload: claims(extra) })
    await hRefused(t, '/x', [['Authorization', `Bearer ${bad}`]], 400, 'JOTGATE_CLAIM_UNSAFE', `${label} [${src}]`)
  }
  const nested = mint({ payload: claims({ address: { country: 'FR\r\nX-Evil: 1' } }) })
  await hRefused(t, '/nested/x', [['Authorization', `Bearer ${nested}`]], 400, 'JOTGATE_CLAIM_UNSAFE', `CR LF in a nested claim a route maps (address.country) [${INJECTION}]`)
  t.notOk(up.seen.some((s) => s.headers['x-evil'] !== undefined), 'no injected header ever reached the upstream')
  // Text that merely spells an escape, and Unicode line separators, go encoded or as they are.
  const seps = mint({ payload: claims({ sub: 'a%0d%0ab', roles: ['x\u2028y', 'z\u0085'] }) })
  const seen = await hThrough(t, '/x', [['Authorization', `Bearer ${seps}`]], 'U+2028 and NEL in roles, %0d%0a as text')
  t.equal(seen.headers['x-user-id'], 'a%0d%0ab', 'an ASCII value that spells an escape goes as it is')
  t.equal(seen.headers['x-user-roles'], "utf-8''x%E2%80%A8y%2Cz%C2%85", 'non-ASCII separators are percent-encoded')
  await hThrough(t, '/x', [['Authorization', `Bearer ${hToken}`]], 'positive control')
})

t.test('non-ASCII claims go by the documented encoding', async (t) => {
  const zoe = mint({ payload: claims({ sub: 'Zo\u00eb', roles: ['a', 'Zo\u00eb'], azp: '\u96fb\u8a71' }) })
  const seen = await hThrough(t, '/x', [['Authorization', `Bearer ${zoe}`]], 'Zoë')
  t.equal(seen.headers['x-user-id'], "utf-8''Zo%C3%AB", 'RFC 8187-style ext-value')
  t.equal(seen.headers['x-user-roles'], "utf-8''a%2CZo%C3%AB", 'joined, then encoded')
  t.equal(seen.headers['x-client-id'], "utf-8''%E9%9B%BB%E8%A9%B1")
  t.equal(decodeURIComponent(String(seen.headers['x-user-id']).slice("utf-8''".length)), 'Zo\u00eb', 'decodes back')
  // A plain ASCII value that merely looks encoded is encoded, so it stays unambiguous.
  const tricky = mint({ payload: claims({ sub: "utf-8''Zo%C3%AB" }) })
  const seen2 = await hThrough(t, '/x', [['Authorization', `Bearer ${tricky}`]], 'prefix look-alike')
  t.equal(seen2.headers['x-user-id'], "utf-8''utf-8%27%27Zo%25C3%25AB")
})

t.test('upstream refusing connections: 502', async (t) => {
  const res = await sendRaw(hgw, '/down/x', [])
  t.equal(res.status, 502)
  t.equal(res.json?.statusCode, 502)
  t.equal(res.json?.code, 'JOTGATE_UPSTREAM_UNAVAILABLE')
  await hThrough(t, '/open/x', [], 'positive control on a live upstream')
})

t.test('upstream slower than upstreamTimeout: 504', async (t) => {
  up.handle((_req, res) => { setTimeout(() => { if (!res.destroyed) res.end('late') }, 2000) })
  t.teardown(() => up.handle(undefined))
  const started = Date.now()
  const res = await sendRaw(hgw, '/open/slow', [])
  const took = Date.now() - started
  t.equal(res.status, 504)
  t.equal(res.json?.statusCode, 504)
  t.equal(res.json?.code, 'JOTGATE_UPSTREAM_TIMEOUT')
  t.ok(took >= 900 && took < 1900, `answered after about 1 s (${took} ms)`)
  up.handle(undefined)
  await hThrough(t, '/open/fast', [], 'positive control')
})

t.test('an upstream 503 to a GET is passed back once, without retries', async (t) => {
  up.handle((_req, res) => { res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '0', 'x-upstream': 'busy' }); res.end('busy') })
  t.teardown(() => up.handle(undefined))
  const before = up.seen.length
  const res = await sendRaw(hgw, '/open/busy', [])
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
  const res = await sendRaw(hgw, '/x', [['Authorization', `Bearer ${hToken}`]])
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
  const { res, chunks } = await get(`${hgw.url}/open/stream`)
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
    const req = httpRequest(`${hgw.url}/x`, { method: 'POST', headers: { authorization: `Bearer ${hToken}`, 'content-type': 'application/octet-stream' } }, resolve)
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
  const resJson = await sendRaw(hgw, '/open/json', [['Content-Type', 'application/json']], 'POST', json)
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
