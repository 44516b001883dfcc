import t from 'tap'
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto'
import { join } from 'node:path'
import { loadConfigObject } from '../../../src/config/load.js'
import { problemLines, route, tempDir, writeFile } from './helpers.js'

const ISSUER = 'https://jotgate.test'
const hsKey = (kid: string, extra: Record<string, unknown> = {}) => ({ kid, alg: 'HS256', secret: 'x'.repeat(32), ...extra })

/** A valid config with one HS256 key, merged with `over` (top-level keys replace). */
function config (over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    store: { type: 'redis' },
    tokens: { issuer: ISSUER, audience: ['api'], keys: [hsKey('h1', { sign: true })] },
    routes: [route({ auth: 'required' })],
    ...over
  }
}

const tokens = (keys: unknown[], extra: Record<string, unknown> = {}) => ({ issuer: ISSUER, audience: ['api'], keys, ...extra })

function pem (dir: string, name: string, key: KeyObject, kind: 'private' | 'public'): string {
  const text = kind === 'private' ? key.export({ type: 'pkcs8', format: 'pem' }) : key.export({ type: 'spki', format: 'pem' })
  return writeFile(dir, name, text)
}

t.test('the base config is valid', async (t) => {
  t.same(loadConfigObject(config(), '/').warnings, [])
})

t.test('cross-field checks: one `<key path>: ...` line each', async (t) => {
  const cases: Array<[string, Record<string, unknown>, string[]]> = [
    ['upstream not http(s)', { routes: [route(), route({ path: '/a' }), route({ path: '/b', upstream: 'ftp://files' })] }, ['routes[2].upstream: must be an http(s) URL']],
    ['upstream not a URL', { routes: [route({ upstream: 'localhost:3000' })] }, ['routes[0].upstream: must be an http(s) URL']],
    ['upstream with credentials', { routes: [route({ upstream: 'http://u:p@h' })] }, ['routes[0].upstream: must be an http(s) URL']],
    ['upstream with a query', { routes: [route({ upstream: 'http://h/?a=1' })] }, ['routes[0].upstream: must not hold a query or fragment']],
    ['route path with ..', { routes: [route({ path: '/a/../b' })] }, ['routes[0].path: must be a normalized path (no //, no . or .. segments, no ? or #, no %)']],
    ['duplicate kid', { tokens: tokens([hsKey('h1', { sign: true }), hsKey('h2'), hsKey('h1')]) }, ['tokens.keys[2].kid: duplicate kid "h1"']],
    ['two sign keys', { tokens: tokens([hsKey('h1', { sign: true }), hsKey('h2', { sign: true })]) }, ['tokens.keys: only one key may have sign: true']],
    ['keys without issuer', { tokens: { keys: [hsKey('h1')], audience: ['api'] } }, ['tokens.issuer: is required when tokens.keys is set (the `iss` of the tokens these keys sign)']],
    ['auth route without keys', { tokens: {}, routes: [route(), route({ path: '/p', auth: 'required' }), route({ path: '/o', auth: 'optional' })] }, [
      'routes[1].auth: required needs tokens.keys or tokens.trustedIssuers to verify tokens',
      'routes[2].auth: optional needs tokens.keys or tokens.trustedIssuers to verify tokens'
    ]],
    ['auth none with require', { routes: [route({ require: { roles: ['a'] } })] }, ['routes[0].auth: none cannot be combined with require or headers (there is no identity)']],
    ['sentinels without name', { store: { type: 'redis', sentinels: [{ host: '127.0.0.1', port: 26379 }] } }, ['store.name: is required with store.sentinels (the Sentinel master name)']],
    ['sentinels and cluster', { store: { type: 'redis', name: 'm', sentinels: [{ host: 'a', port: 1 }], cluster: [{ host: 'b', port: 2 }] } }, ['store: use either sentinels or cluster, not both']],
    ['store url', { store: { type: 'redis', url: 'http://redis' } }, ['store.url: must be a redis:// or rediss:// URL']],
    ['admin port = server port', { server: { host: '127.0.0.1', port: 8080 }, admin: { host: '127.0.0.1', port: 8080 } }, ['admin.port: must differ from server.port']],
    ['admin port = server port on the wildcard', { server: { host: '0.0.0.0', port: 8080 }, admin: { host: '127.0.0.1', port: 8080 } }, ['admin.port: must differ from server.port']],
    ['bad claim header name', { claimHeaders: { 'X User': 'sub' } }, ['claimHeaders["X User"]: is not a valid header name']],
    ['bad strip pattern', { stripHeaders: ['X-*-Y'] }, ['stripHeaders[0]: must be a header name, optionally ending with * (a prefix)']],
    ['accessTtl over maxLifetime', { tokens: tokens([hsKey('h1', { sign: true })], { accessTtl: '2h', maxLifetime: '1h' }) }, [
      'tokens.accessTtl: is longer than tokens.maxLifetime, so issued tokens would be refused'
    ]],
    ['trusted issuer without jwksUri', { tokens: tokens([hsKey('h1', { sign: true })], { trustedIssuers: [{ issuer: 'https://idp' }] }) }, ['tokens.trustedIssuers[0]: needs exactly one of jwksUri or discovery: true']],
    ['trusted issuer with HS', { tokens: tokens([hsKey('h1', { sign: true })], { trustedIssuers: [{ issuer: 'https://idp', jwksUri: 'https://idp/jwks', algorithms: ['HS256'] }] }) }, [
      'tokens.trustedIssuers[0].algorithms: HS* needs a shared secret; outside issuers must use asymmetric algorithms'
    ]],
    ['auth without users or delegate', { auth: {} }, ['auth: needs exactly one of users or delegate']],
    ['auth without a sign key', { auth: { delegate: { url: 'http://127.0.0.1:1/login' } }, tokens: tokens([hsKey('h1')]) }, [
      'tokens.keys: exactly one key needs sign: true when auth is configured (it signs the tokens login issues)'
    ]]
  ]
  for (const [name, over, lines] of cases) t.same(problemLines(() => loadConfigObject(config(over), '/')), lines, name)
})

t.test('several problems at once, in one pass', async (t) => {
  const lines = problemLines(() => loadConfigObject(config({
    tokens: tokens([hsKey('h1', { sign: true }), hsKey('h1', { sign: true })]),
    routes: [route({ upstream: 'nope' })]
  }), '/'))
  t.same(lines, [
    'tokens.keys: only one key may have sign: true',
    'tokens.keys[1].kid: duplicate kid "h1"',
    'routes[0].upstream: must be an http(s) URL'
  ])
})

t.test('HMAC secrets: at least the hash size (RFC 7518 section 3.2)', async (t) => {
  const dir = tempDir(t)
  const cases: Array<[string, Record<string, unknown>, string[]]> = [
    ['HS256, 31 bytes', { kid: 'h', alg: 'HS256', secret: 'x'.repeat(31) }, ['tokens.keys[0].secret: is 31 bytes; HS256 needs at least 32 (RFC 7518 section 3.2)']],
    ['HS256, 32 bytes', { kid: 'h', alg: 'HS256', secret: 'x'.repeat(32) }, []],
    ['HS256, 31 bytes of UTF-8 in fewer characters', { kid: 'h', alg: 'HS256', secret: 'é'.repeat(15) + 'x' }, ['tokens.keys[0].secret: is 31 bytes; HS256 needs at least 32 (RFC 7518 section 3.2)']],
    ['HS384, 47 bytes base64', { kid: 'h', alg: 'HS384', secretBase64: randomBytes(47).toString('base64') }, ['tokens.keys[0].secretBase64: is 47 bytes; HS384 needs at least 48 (RFC 7518 section 3.2)']],
    ['HS512, 64 bytes base64url', { kid: 'h', alg: 'HS512', secretBase64: randomBytes(64).toString('base64url') }, []],
    ['not base64', { kid: 'h', alg: 'HS256', secretBase64: 'not base64!' }, ['tokens.keys[0].secretBase64: is not base64 or base64url']],
    ['HS512, 63-byte file', { kid: 'h', alg: 'HS512', secretFile: writeFile(dir, 'short.secret', randomBytes(63)) }, ['tokens.keys[0].secretFile: is 63 bytes; HS512 needs at least 64 (RFC 7518 section 3.2)']],
    ['two secret sources', { kid: 'h', alg: 'HS256', secret: 'x'.repeat(32), secretBase64: 'eA==' }, ['tokens.keys[0]: HS256 needs exactly one of secret, secretBase64 or secretFile']],
    ['HS with a key file', { kid: 'h', alg: 'HS256', publicKeyFile: 'k.pem' }, ['tokens.keys[0]: HS256 takes secret, secretBase64 or secretFile, not key files']]
  ]
  for (const [name, key, lines] of cases) {
    const run = () => loadConfigObject(config({ tokens: tokens([key]) }), dir)
    if (lines.length === 0) t.doesNotThrow(run, name)
    else t.same(problemLines(run), lines, name)
  }
})

t.test('asymmetric keys: type, size and curve match the algorithm', async (t) => {
  const dir = tempDir(t)
  const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 })
  const rsa2048 = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' })
  const ed = generateKeyPairSync('ed25519')
  const files = {
    rsa1024pub: pem(dir, 'rsa1024.pub.pem', rsa1024.publicKey, 'public'),
    rsa1024key: pem(dir, 'rsa1024.key.pem', rsa1024.privateKey, 'private'),
    rsa2048pub: pem(dir, 'rsa2048.pub.pem', rsa2048.publicKey, 'public'),
    p256pub: pem(dir, 'p256.pub.pem', p256.publicKey, 'public'),
    p384key: pem(dir, 'p384.key.pem', p384.privateKey, 'private'),
    edpub: pem(dir, 'ed.pub.pem', ed.publicKey, 'public'),
    garbage: writeFile(dir, 'garbage.pem', 'not a key')
  }
  const cases: Array<[string, Record<string, unknown>, string[] | RegExp]> = [
    ['RSA 1024 public key refused', { kid: 'r', alg: 'RS256', publicKeyFile: files.rsa1024pub }, ['tokens.keys[0].publicKeyFile: is a 1024-bit RSA key; at least 2048 bits are required']],
    ['RSA 1024 private key refused', { kid: 'r', alg: 'PS256', privateKeyFile: 'rsa1024.key.pem' }, ['tokens.keys[0].privateKeyFile: is a 1024-bit RSA key; at least 2048 bits are required']],
    ['RSA 2048 accepted', { kid: 'r', alg: 'RS256', publicKeyFile: files.rsa2048pub }, []],
    ['EC P-256 key for ES384', { kid: 'e', alg: 'ES384', publicKeyFile: files.p256pub }, ['tokens.keys[0].publicKeyFile: is on curve prime256v1; ES384 needs secp384r1']],
    ['EC P-384 private key for ES384', { kid: 'e', alg: 'ES384', privateKeyFile: files.p384key }, []],
    ['EC key for RS256', { kid: 'e', alg: 'RS256', publicKeyFile: files.p256pub }, ['tokens.keys[0].publicKeyFile: is a ec key; RS256 needs an RSA key']],
    ['RSA key for ES256', { kid: 'e', alg: 'ES256', publicKeyFile: files.rsa2048pub }, ['tokens.keys[0].publicKeyFile: is a rsa key; ES256 needs an EC key']],
    ['Ed25519 for EdDSA', { kid: 'd', alg: 'EdDSA', publicKeyFile: files.edpub }, []],
    ['P-256 for EdDSA', { kid: 'd', alg: 'EdDSA', publicKeyFile: files.p256pub }, ['tokens.keys[0].publicKeyFile: is a ec key; EdDSA needs an Ed25519 key']],
    ['missing key file', { kid: 'm', alg: 'ES256', publicKeyFile: 'nope.pub.pem' }, [`tokens.keys[0].publicKeyFile: cannot read ${join(dir, 'nope.pub.pem')} (ENOENT)`]],
    ['not PEM', { kid: 'g', alg: 'ES256', publicKeyFile: files.garbage }, /^tokens\.keys\[0\]\.publicKeyFile: is not a readable public key in PEM form/],
    ['both key files', { kid: 'b', alg: 'ES384', publicKeyFile: files.p256pub, privateKeyFile: files.p384key }, ['tokens.keys[0]: ES384 needs exactly one of privateKeyFile or publicKeyFile']],
    ['asymmetric with a secret', { kid: 's', alg: 'ES256', secret: 'x'.repeat(32) }, ['tokens.keys[0]: ES256 takes privateKeyFile or publicKeyFile, not a secret']],
    ['sign with only a public key', { kid: 'p', alg: 'ES256', publicKeyFile: files.p256pub, sign: true }, ['tokens.keys[0].sign: a signing key needs privateKeyFile (or an HMAC secret)']]
  ]
  for (const [name, key, expected] of cases) {
    const run = () => loadConfigObject(config({ tokens: tokens([key]) }), dir)
    if (Array.isArray(expected) && expected.length === 0) t.doesNotThrow(run, name)
    else if (Array.isArray(expected)) t.same(problemLines(run), expected, name)
    else t.match(problemLines(run), [expected], name)
  }
})

t.test('warnings: risky but legal settings', async (t) => {
  const codes = (over: Record<string, unknown>) => loadConfigObject(config(over), '/').warnings.map((w) => `${w.code} ${w.path}`)
  t.same(codes({ tokens: { issuer: ISSUER, keys: [hsKey('h1', { sign: true })] } }), ['JOTGATE_W_AUDIENCE_UNCHECKED tokens.audience'])
  t.same(codes({ tokens: {}, routes: [route()] }), [], 'no audience warning when nothing is verified')
  t.same(codes({ store: { onError: 'allow' } }), ['JOTGATE_W_FAIL_OPEN store.onError'])
  t.same(codes({ store: { type: 'memory' } }), ['JOTGATE_W_MEMORY_STORE store.type'])
  t.same(codes({ routes: [route({ auth: 'required', forwardAuthorization: true })] }), ['JOTGATE_W_FORWARD_AUTHORIZATION routes[0].forwardAuthorization'])
  t.same(codes({ tokens: tokens([hsKey('h1', { sign: true })], { clockTolerance: '10m' }) }), ['JOTGATE_W_CLOCK_TOLERANCE tokens.clockTolerance'])
  const [warning] = loadConfigObject(config({ store: { onError: 'allow' } }), '/').warnings
  t.match(warning, { code: 'JOTGATE_W_FAIL_OPEN', path: 'store.onError', message: /revoked tokens are accepted/ })
})
