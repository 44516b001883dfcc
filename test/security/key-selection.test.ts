/**
 * Attack family: key selection (CONTRACT section 3 step 4). The key is
 * chosen by the exact `iss` and `kid` among configured keys only: a `kid` is
 * a name, never a path, a query or a URL; `jku`, `x5u`, `jwk` and `x5c` are
 * never fetched or trusted (a spy server that would serve the attacker's key
 * proves nothing was asked); JWS extensions (`crit`, `b64`) and JWE fail.
 */
import t from 'tap'
import { createPublicKey, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startUpstream } from '../helpers/upstream.js'
import { startGateway } from '../helpers/gateway.js'
import { idpClaims, idpToken, providerKey, startJwksProvider } from '../helpers/jwks-provider.js'
import { AUDIENCE, ISSUER, KEYS, b64, claims, keyConfigs, keyDir, mint, zoo, type ZooKey } from '../helpers/zoo.js'
import { accepted, refuseAll, refused, sleep, zooCases, type TokenCase } from './kit.js'

const up = await startUpstream()
// The spy serves a JWKS and a PEM holding the attacker's key: had the
// gateway fetched either, the attacker's tokens would verify.
const attackerKey = providerKey('P-256', 'attacker')
const spy = await startJwksProvider([attackerKey.jwk])
const idpKey = providerKey('P-256', 'idp-key')
const idp = await startJwksProvider([idpKey.jwk])
const gw = await startGateway({
  name: 'sec-key-selection',
  config: {
    tokens: {
      issuer: ISSUER,
      audience: [AUDIENCE],
      keys: keyConfigs(),
      trustedIssuers: [{ issuer: idp.issuer, jwksUri: idp.jwksUri, audience: [AUDIENCE], algorithms: ['ES256'], cooldown: '30s', fetchTimeout: '1s' }]
    },
    routes: [{ path: '/', upstream: up.url }]
  }
})
t.teardown(async () => { await gw.close(); await up.close(); await spy.close(); await idp.close() })

/** The zoo's es256 entry signing with another private key: a valid signature by the wrong key. */
const attacker: ZooKey = { ...KEYS.es256!, signKey: attackerKey.privateKey }
const signedBy = (key: ZooKey, header: Record<string, unknown>): string => mint({ key, header })

t.test('the zoo: unknown kid, crit, JWE and b64 are refused', async (t) => {
  await refuseAll(t, gw, up, zooCases(zoo(), 'key-selection'))
  await accepted(t, gw, up, mint(), 'alice', 'zoo good (positive control)')
})

t.test('kid: unknown, path traversal, quotes and injection are names that match no key', async (t) => {
  const traversal = 'PortSwigger "JWT authentication bypass via kid header path traversal"; jwt_tool -I -hc kid'
  const injection = 'RFC 8725 section 3.10 (kid: no SQL or LDAP injection)'
  const keyFile = join(keyDir, 'es256.pub.pem')
  // The classic: a kid naming a file whose bytes are known (empty, or the
  // public key file itself), and an HMAC made with those bytes.
  const hmacWith = (kid: string, secret: Buffer): string => mint({ key: { kid, alg: 'HS256', signKey: secret, config: {} } })
  const kids: Array<[string, string]> = [
    ['nope', 'RFC 7515 section 4.1.4'],
    ['../../../../../../../../dev/null', traversal],
    ['/dev/null', traversal],
    ['..\\..\\..\\..\\windows\\win.ini', traversal],
    ['file:///dev/null', traversal],
    [keyFile, traversal],
    ['../es256.pub.pem', traversal],
    ['es256/../es256', traversal],
    ['./es256', traversal],
    ['es256\u0000', 'CWE-158 (NUL truncation)'],
    ["es256'", injection],
    ['es256"', injection],
    ["' OR '1'='1", injection],
    ["x' UNION SELECT 'secret' -- ", 'PortSwigger "JWT attacks" (kid SQL injection)'],
    ['*)(uid=*))(|(uid=*', injection],
    ['$(id)', 'CWE-78 (kid passed to a shell)'],
    ['`id`', 'CWE-78'],
    ['| cat /etc/passwd', 'CWE-78'],
    ['${jndi:ldap://127.0.0.1:1/a}', 'CVE-2021-44228 (kid logged)'],
    ['ES256', 'RFC 7515 section 4.1.4 (kid is case-sensitive)'],
    ['es256 ', 'RFC 7515 section 4.1.4 (exact match)'],
    [' es256', 'RFC 7515 section 4.1.4 (exact match)'],
    ['%65s256', 'RFC 3986 section 2.1 (no decoding)'],
    ['', 'RFC 7515 section 4.1.4'],
    ['k'.repeat(4000), 'CWE-400 (long kid)'],
    ['__proto__', 'CWE-1321 (prototype pollution)'],
    ['constructor', 'CWE-1321'],
    ['toString', 'CWE-1321'],
    ['hasOwnProperty', 'CWE-1321']
  ]
  const cases: TokenCase[] = []
  for (const [kid, src] of kids) {
    cases.push({ name: `kid ${JSON.stringify(kid.slice(0, 40))} (ES256, attacker-signed)`, src, token: signedBy(attacker, { kid }), code: 'JOTGATE_TOKEN_KEY_UNKNOWN' })
    cases.push({ name: `kid ${JSON.stringify(kid.slice(0, 40))} (HS256 with an empty secret)`, src, token: hmacWith(kid, Buffer.alloc(0)), code: 'JOTGATE_TOKEN_KEY_UNKNOWN' })
  }
  cases.push(
    { name: 'kid naming the public key file, HS256 keyed with its bytes', src: traversal, token: hmacWith(keyFile, readFileSync(keyFile)), code: 'JOTGATE_TOKEN_KEY_UNKNOWN' },
    { name: 'kid of a configured key, signed by another key', src: 'RFC 7515 section 5.2 step 8', token: signedBy(attacker, { kid: 'es256' }), code: 'JOTGATE_TOKEN_SIGNATURE' }
  )
  for (const [label, kid] of [['a number', 1], ['null', null], ['true', true], ['an object', {}], ['an array', ['es256']]] as const) {
    cases.push({ name: `kid ${label}`, src: 'RFC 7515 section 4.1.4 (a string)', token: signedBy(KEYS.es256!, { kid }), code: 'JOTGATE_TOKEN_MALFORMED' })
  }
  await refuseAll(t, gw, up, cases)
  await accepted(t, gw, up, mint(), 'alice', 'kid es256 (positive control)')
})

t.test('jku, x5u, jwk and x5c are never fetched or trusted (a spy server)', async (t) => {
  spy.resetHits()
  idp.resetHits()
  const jwk = attackerKey.jwk
  const x5c = [createPublicKey(attackerKey.privateKey).export({ type: 'spki', format: 'der' }).toString('base64')]
  const jku = spy.jwksUri
  const x5u = `${spy.url}/cert.pem`
  const ssrf = 'RFC 8725 section 3.10 (SSRF); PortSwigger "JWT authentication bypass via jku header injection"'
  const embedded = 'CVE-2018-0114 (node-jose); PortSwigger "JWT authentication bypass via jwk header injection"'
  const payload = () => idpClaims(idp.issuer, AUDIENCE)
  await refuseAll(t, gw, up, [
    { name: 'jku at the spy, attacker kid', src: ssrf, token: signedBy(attacker, { kid: 'attacker', jku }), code: 'JOTGATE_TOKEN_KEY_UNKNOWN' },
    { name: 'jku at the spy, kid es256', src: ssrf, token: signedBy(attacker, { jku }), code: 'JOTGATE_TOKEN_SIGNATURE' },
    { name: 'jku at the spy, no kid', src: ssrf, token: signedBy(attacker, { kid: undefined, jku }), code: 'JOTGATE_TOKEN_SIGNATURE' },
    { name: 'jku on the issuer\'s own host', src: 'RFC 8725 section 3.10', token: signedBy(attacker, { kid: 'attacker', jku: `${ISSUER}/.well-known/jwks.json` }), code: 'JOTGATE_TOKEN_KEY_UNKNOWN' },
    { name: 'x5u at the spy, attacker kid', src: ssrf, token: signedBy(attacker, { kid: 'attacker', x5u }), code: 'JOTGATE_TOKEN_KEY_UNKNOWN' },
    { name: 'x5u at the spy, kid es256', src: ssrf, token: signedBy(attacker, { x5u }), code: 'JOTGATE_TOKEN_SIGNATURE' },
    { name: 'embedded jwk, kid es256', src: embedded, token: signedBy(attacker, { jwk }), code: 'JOTGATE_TOKEN_SIGNATURE' },
    { name: 'embedded jwk, its own kid', src: embedded, token: signedBy(attacker, { kid: 'attacker', jwk }), code: 'JOTGATE_TOKEN_KEY_UNKNOWN' },
    { name: 'x5c with the attacker key, kid es256', src: 'RFC 7515 section 4.1.6; CVE-2018-0114 (x5c variant)', token: signedBy(attacker, { x5c }), code: 'JOTGATE_TOKEN_SIGNATURE' },
    { name: 'every pointer at once, no kid', src: ssrf, token: signedBy(attacker, { kid: undefined, jku, x5u, jwk, x5c }), code: 'JOTGATE_TOKEN_SIGNATURE' },
    // Formerly in test/integration/token-zoo.test.ts (their URLs pointed nowhere; these point at the spy).
    { name: 'embedded jwk, attacker-signed', src: embedded, token: signedBy(attacker, { jwk }), code: 'JOTGATE_TOKEN_SIGNATURE' },
    { name: 'embedded jwk, no kid', src: embedded, token: signedBy(attacker, { kid: undefined, jwk }), code: 'JOTGATE_TOKEN_SIGNATURE' },
    { name: 'jku to an attacker URL', src: ssrf, token: signedBy(attacker, { kid: 'evil', jku }), code: 'JOTGATE_TOKEN_KEY_UNKNOWN' },
    { name: 'x5u to an attacker URL', src: ssrf, token: signedBy(attacker, { x5u }), code: 'JOTGATE_TOKEN_SIGNATURE' },
    // An outside issuer refetches its own configured JWKS for an unknown kid, never the jku.
    { name: 'outside issuer, unknown kid, jku at the spy', src: ssrf, token: idpToken(attackerKey, payload(), { jku, x5u }), code: 'JOTGATE_TOKEN_KEY_UNKNOWN' }
  ])
  await sleep(200)
  t.equal(spy.hits.total, 0, 'the spy was never asked (no jku, x5u fetch)')
  t.ok(idp.hits.jwks >= 1, 'the unknown kid was looked up at the configured JWKS only')
  await accepted(t, gw, up, mint({ header: { jku, x5u } }), 'alice', 'a good token carrying jku and x5u: verified with the configured key (positive control)')
  t.equal(spy.hits.total, 0, 'still nothing fetched from the spy')
})

t.test('a kid is looked up among the keys of the token\'s own issuer only', async (t) => {
  await refuseAll(t, gw, up, [
    { name: 'outside issuer naming a local kid, signed by that local key', src: 'RFC 8725 section 3.8 (issuer and key belong together)', token: mint({ payload: idpClaims(idp.issuer, AUDIENCE) }), code: 'JOTGATE_TOKEN_KEY_UNKNOWN' },
    { name: 'local issuer naming an outside kid, signed by that outside key', src: 'RFC 8725 section 3.8', token: idpToken(idpKey, claims()), code: 'JOTGATE_TOKEN_KEY_UNKNOWN' }
  ])
  await accepted(t, gw, up, idpToken(idpKey, idpClaims(idp.issuer, AUDIENCE, { sub: 'idp-user' })), 'idp-user', 'the outside key under its own issuer (positive control)')
  await accepted(t, gw, up, mint(), 'alice', 'the local key under its own issuer (positive control)')
})

t.test('crit, b64 and JWE headers are refused', async (t) => {
  const ext = 'RFC 7515 section 4.1.11 (crit); RFC 7797 (b64)'
  const cases: TokenCase[] = [
    { name: 'crit ["exp"]', src: ext, token: signedBy(KEYS.es256!, { crit: ['exp'] }), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'crit [] (empty)', src: 'RFC 7515 section 4.1.11 (MUST NOT be empty)', token: signedBy(KEYS.es256!, { crit: [] }), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'crit naming an unknown extension', src: ext, token: signedBy(KEYS.es256!, { crit: ['x-policy'], 'x-policy': 'allow-all' }), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'crit as a string', src: ext, token: signedBy(KEYS.es256!, { crit: 'b64' }), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'b64 false without crit', src: 'RFC 7797 section 6', token: signedBy(KEYS.es256!, { b64: false }), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'b64 true', src: 'RFC 7797 section 3', token: signedBy(KEYS.es256!, { b64: true, crit: ['b64'] }), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'enc (JWE)', src: 'RFC 7516 section 4.1.2; RFC 8725 section 3.11', token: signedBy(KEYS.es256!, { enc: 'A128GCM' }), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'zip', src: 'RFC 7516 section 4.1.3; RFC 8725 section 3.6', token: signedBy(KEYS.es256!, { zip: 'DEF' }), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'JWE compact form (five segments)', src: 'RFC 7516 section 7.1', token: `${b64({ alg: 'dir', enc: 'A128GCM' })}..${randomBytes(12).toString('base64url')}.${randomBytes(32).toString('base64url')}.${randomBytes(16).toString('base64url')}`, code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'detached payload (empty middle segment)', src: 'RFC 7515 appendix F', token: `${b64({ alg: 'ES256', kid: 'es256' })}..${mint().split('.')[2]!}`, code: 'JOTGATE_TOKEN_MALFORMED' }
  ]
  await refuseAll(t, gw, up, cases)
  await accepted(t, gw, up, signedBy(KEYS.es256!, { typ: 'JWT', cty: undefined }), 'alice', 'no extension header (positive control)')
})

t.test('a token without kid: accepted only when one key of its issuer has its alg', async (t) => {
  // keyConfigs() holds one ES256 key (es256) and one RS256 key (rs256).
  await accepted(t, gw, up, mint({ key: KEYS.es256!, header: { kid: undefined }, payload: claims({ sub: 'no-kid-es' }) }), 'no-kid-es', 'ES256 without kid')
  await accepted(t, gw, up, mint({ key: KEYS.rs256!, header: { kid: undefined }, payload: claims({ sub: 'no-kid-rs' }) }), 'no-kid-rs', 'RS256 without kid')
  // Without kid, the signature must still be the one key's.
  await refused(t, gw, up, mint({ key: { ...KEYS.es256!, signKey: KEYS.es384!.signKey }, header: { kid: undefined, alg: 'ES256' }, signAlg: 'ES256' }), 'JOTGATE_TOKEN_SIGNATURE', 'ES256 without kid, other key [RFC 7515 section 5.2]')
})

t.test('two keys share an alg: a token without kid names no one key', async (t) => {
  const second: ZooKey = { kid: 'hs256-b', alg: 'HS256', signKey: randomBytes(32), config: {} }
  second.config = { kid: second.kid, alg: 'HS256', secretBase64: (second.signKey as Buffer).toString('base64') }
  const up2 = await startUpstream()
  const gw2 = await startGateway({
    name: 'sec-key-selection-2',
    config: { tokens: { issuer: ISSUER, audience: [AUDIENCE], keys: [...keyConfigs(), second.config] }, routes: [{ path: '/', upstream: up2.url }] }
  })
  t.teardown(async () => { await gw2.close(); await up2.close() })
  // Positive controls: each HS256 key by its kid.
  await accepted(t, gw2, up2, mint({ key: KEYS.hs256!, payload: claims({ sub: 'h1' }) }), 'h1', 'hs256 with kid')
  await accepted(t, gw2, up2, mint({ key: second, payload: claims({ sub: 'h2' }) }), 'h2', 'hs256-b with kid')
  await accepted(t, gw2, up2, mint({ key: KEYS.es256!, header: { kid: undefined }, payload: claims({ sub: 'e1' }) }), 'e1', 'ES256 without kid still unambiguous')
  await refuseAll(t, gw2, up2, [
    { name: 'HS256 without kid, two candidates', src: 'CONTRACT section 3 step 4 (exactly one key)', token: mint({ key: KEYS.hs256!, header: { kid: undefined } }), code: 'JOTGATE_TOKEN_KEY_UNKNOWN' },
    { name: 'HS256-b without kid, two candidates', src: 'CONTRACT section 3 step 4', token: mint({ key: second, header: { kid: undefined } }), code: 'JOTGATE_TOKEN_KEY_UNKNOWN' },
    { name: 'hs256 signature under the hs256-b kid', src: 'RFC 7515 section 5.2', token: mint({ key: { ...KEYS.hs256!, kid: 'hs256-b' } }), code: 'JOTGATE_TOKEN_SIGNATURE' }
  ])
})
