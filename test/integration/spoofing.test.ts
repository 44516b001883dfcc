/**
 * Identity headers cannot be forged (CONTRACT section 3, steps 2 and 7):
 * whatever a client sends as X-User-*, X-Client-Id, X-Jwt-* or a route's
 * mapped header, in any case, repeated, or named in `Connection`, the
 * upstream sees only what the verified token says, or nothing.
 * Requests go over raw sockets so repeated and mixed-case headers reach the
 * gateway exactly as written.
 */
import t from 'tap'
import { startUpstream, type SeenRequest, type Upstream } from '../helpers/upstream.js'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { claims, mint, rawRequest, rawText, tamper, type RawResponse } from '../helpers/zoo.js'

type TapTest = Parameters<Parameters<typeof t.test>[0]>[0]
type HeaderList = Array<readonly [string, string]>

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

async function send (gw: TestGateway, path: string, headers: HeaderList): Promise<RawResponse> {
  return rawRequest(gw.url, rawText(path, headers))
}

/** Sends and returns the one request the upstream saw for it. */
async function through (t: TapTest, gw: TestGateway, up: Upstream, path: string, headers: HeaderList, label: string): Promise<SeenRequest> {
  const before = up.seen.length
  const res = await send(gw, path, headers)
  t.equal(res.status, 200, `${label}: status (${res.body.slice(0, 100)})`)
  t.equal(up.seen.length, before + 1, `${label}: upstream saw it once`)
  return up.seen.at(-1)!
}

async function refusedUnseen (t: TapTest, gw: TestGateway, up: Upstream, path: string, headers: HeaderList, status: number, code: string, label: string): Promise<void> {
  const before = up.seen.length
  const res = await send(gw, path, headers)
  t.equal(res.status, status, `${label}: status`)
  t.equal(res.json?.statusCode, status, `${label}: statusCode`)
  t.equal(res.json?.code, code, `${label}: code`)
  t.equal(up.seen.length, before, `${label}: upstream saw nothing`)
}

const up = await startUpstream()
const routes = [
  { path: '/none', upstream: up.url, auth: 'none' },
  { path: '/opt', upstream: up.url, auth: 'optional' },
  { path: '/req', upstream: up.url, headers: { 'X-Admin': 'sub' } },
  { path: '/fwd', upstream: up.url, forwardAuthorization: true }
]
const gw = await startGateway({ name: 'spoofing', config: { routes } })
t.teardown(async () => { await gw.close(); await up.close() })

const payload = claims({ sub: 'alice', roles: ['user', 'ops'], azp: 'web' })
const token = mint({ payload })
const bearer: HeaderList = [['Authorization', `Bearer ${token}`]]

t.test('auth none: spoofed identity headers are removed', async (t) => {
  const seen = await through(t, gw, up, '/none/x', SPOOFED, 'none')
  t.same(identityHeaders(seen), [], 'no identity header at all')
  noEvil(t, seen, 'none')
  // A valid token on an auth: none route is not verified, so it gives no identity either.
  const withToken = await through(t, gw, up, '/none/x', [...SPOOFED, ...bearer], 'none with token')
  t.same(identityHeaders(withToken), [], 'no identity header from an unverified token')
  noEvil(t, withToken, 'none with token')
})

t.test('auth optional without a token: no identity headers', async (t) => {
  const seen = await through(t, gw, up, '/opt/x', SPOOFED, 'optional')
  t.same(identityHeaders(seen), [], 'no identity header at all')
  noEvil(t, seen, 'optional')
})

t.test('auth optional with a token: only the token\'s values', async (t) => {
  const seen = await through(t, gw, up, '/opt/x', [...SPOOFED, ...bearer], 'optional+token')
  t.same(identityHeaders(seen).sort(), [
    ['x-client-id', 'web'],
    ['x-user-id', 'alice'],
    ['x-user-roles', 'user,ops']
  ], 'exactly the mapped claims, once each; X-Admin belongs to another route')
  noEvil(t, seen, 'optional+token')
  t.equal(seen.headers.authorization, undefined, 'token not forwarded')
})

t.test('auth required with a token: the route\'s own mapping too', async (t) => {
  const seen = await through(t, gw, up, '/req/x', [...SPOOFED, ...bearer], 'required+token')
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
  const seenBare = await through(t, gw, up, '/req/x', [...SPOOFED, ['Authorization', `Bearer ${bare}`]], 'required+token without roles/azp')
  t.same(identityHeaders(seenBare).sort(), [['x-admin', 'bob'], ['x-user-id', 'bob']], 'absent claims give no header')
  noEvil(t, seenBare, 'required+token without roles/azp')
})

t.test('a refused request never reaches the upstream, spoofed headers or not', async (t) => {
  const bad = tamper(token)
  await refusedUnseen(t, gw, up, '/req/x', [...SPOOFED, ['Authorization', `Bearer ${bad}`]], 401, 'JOTGATE_TOKEN_SIGNATURE', 'required, bad token')
  await refusedUnseen(t, gw, up, '/opt/x', [...SPOOFED, ['Authorization', `Bearer ${bad}`]], 401, 'JOTGATE_TOKEN_SIGNATURE', 'optional, bad token')
  await refusedUnseen(t, gw, up, '/req/x', SPOOFED, 401, 'JOTGATE_TOKEN_MISSING', 'required, no token')
  // Positive control on the same route.
  await through(t, gw, up, '/req/x', bearer, 'required, good token')
})

t.test('forwardAuthorization', async (t) => {
  const fwd = await through(t, gw, up, '/fwd/x', bearer, 'forwardAuthorization: true')
  t.equal(fwd.headers.authorization, `Bearer ${token}`, 'the token is forwarded')
  t.equal(fwd.headers['x-user-id'], 'alice')
  const req = await through(t, gw, up, '/req/x', bearer, 'default')
  t.equal(req.headers.authorization, undefined, 'the token is not forwarded by default')
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
    const seen = await through(t, gw, up, '/none/x', [['X-Request-Id', id]], `X-Request-Id ${label}`)
    if (kept) t.equal(seen.headers['x-request-id'], id, `${label}: kept`)
    else t.match(seen.headers['x-request-id'], /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, `${label}: replaced by a generated id`)
  }
  const seen = await through(t, gw, up, '/none/x', [], 'no X-Request-Id')
  t.match(seen.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'generated when absent')
  // Two incoming ids: one is generated (Node joins them, and ", " holds a space).
  const two = await through(t, gw, up, '/none/x', [['X-Request-Id', 'one'], ['X-Request-Id', 'two']], 'two X-Request-Id')
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
  for (const path of ['/none/x', '/req/x']) {
    const seen = await through(t, gw, up, path, [...FORWARDED_IN, ...bearer], `trustProxy false ${path}`)
    t.equal(seen.headers['x-forwarded-for'], '127.0.0.1', `${path}: X-Forwarded-For is the peer`)
    t.equal(seen.headers['x-forwarded-proto'], 'http', `${path}: X-Forwarded-Proto`)
    t.equal(seen.headers['x-forwarded-host'], 'jotgate.test', `${path}: X-Forwarded-Host is the Host`)
    t.equal(seen.headers.forwarded, undefined, `${path}: Forwarded dropped`)
  }
  // Repeated X-Forwarded-For lines are replaced as a whole.
  const seen = await through(t, gw, up, '/none/x', [['X-Forwarded-For', '9.9.9.9'], ['x-forwarded-for', '8.8.8.8']], 'repeated X-Forwarded-For')
  t.equal(seen.headers['x-forwarded-for'], '127.0.0.1')
})

t.test('trustProxy true: ours appended to what the proxy in front sent', async (t) => {
  const trusted = await startGateway({
    name: 'spoofing-trust',
    config: { server: { host: '127.0.0.1', port: 0, trustProxy: true }, routes }
  })
  t.teardown(() => trusted.close())
  const spoofedNoConnection = SPOOFED.filter(([n]) => n !== 'Connection')
  const seen = await through(t, trusted, up, '/req/x', [...FORWARDED_IN, ...spoofedNoConnection, ...bearer], 'trustProxy true')
  t.equal(seen.headers['x-forwarded-for'], '1.2.3.4, 127.0.0.1')
  t.equal(seen.headers['x-forwarded-proto'], 'https, http')
  t.equal(seen.headers['x-forwarded-host'], 'front.test, jotgate.test')
  t.equal(seen.headers.forwarded, 'for=1.2.3.4;proto=https;host=front.test', 'Forwarded kept when trusted')
  // Trusting the proxy's address headers never means trusting identity headers.
  t.equal(seen.headers['x-user-id'], 'alice')
  t.equal(seen.headers['x-admin'], 'alice')
  const two = await through(t, trusted, up, '/none/x', [['X-Forwarded-For', '1.1.1.1'], ['X-Forwarded-For', '2.2.2.2']], 'trusted, repeated X-Forwarded-For')
  t.equal(two.headers['x-forwarded-for'], '1.1.1.1, 2.2.2.2, 127.0.0.1')
  // Named in Connection, the incoming one is hop-by-hop (RFC 9110 section 7.6.1) and dropped before ours is added.
  const hop = await through(t, trusted, up, '/req/x', [...FORWARDED_IN, ...SPOOFED, ...bearer], 'trusted, Connection names X-Forwarded-For')
  t.equal(hop.headers['x-forwarded-for'], '127.0.0.1')
  t.equal(hop.headers['x-user-id'], 'alice', 'Connection naming X-User-Id does not remove ours')
  noEvil(t, hop, 'trusted, Connection trick')
  const none = await through(t, trusted, up, '/none/x', [], 'trusted, no incoming X-Forwarded-For')
  t.equal(none.headers['x-forwarded-for'], '127.0.0.1')
})

