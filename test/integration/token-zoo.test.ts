/**
 * The token zoo through a real gateway: every refused token maps to its
 * documented code (CONTRACT sections 4 and 6) and never reaches the
 * upstream; a good token for every supported algorithm does.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { startUpstream, type Upstream } from '../helpers/upstream.js'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { ISSUER, AUDIENCE, KEYS, b64, claims, keyConfigs, mint, now, signInput, zoo, type ZooKey } from '../helpers/zoo.js'

/** The `t` of a subtest (tap's plugin-built type). */
type TapTest = Parameters<Parameters<typeof t.test>[0]>[0]

const INVALID_TOKEN = 'Bearer realm="jotgate", error="invalid_token"'

interface ErrorBody { statusCode: number, code: string }

async function call (gw: TestGateway, token: string | undefined, path = '/orders'): Promise<{ status: number, challenge: string | null, body: ErrorBody | undefined, text: string }> {
  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` }
  const res = await fetch(`${gw.url}${path}`, { headers })
  const text = await res.text()
  let body: ErrorBody | undefined
  try { body = JSON.parse(text) as ErrorBody } catch { body = undefined }
  return { status: res.status, challenge: res.headers.get('www-authenticate'), body, text }
}

/** Asserts a 401 with `code`, the invalid_token challenge and nothing upstream. */
async function refused (t: TapTest, gw: TestGateway, up: Upstream, token: string, code: string, name: string): Promise<void> {
  const before = up.seen.length
  const res = await call(gw, token)
  t.equal(res.status, 401, `${name}: status`)
  t.equal(res.body?.statusCode, 401, `${name}: statusCode`)
  t.equal(res.body?.code, code, `${name}: code`)
  t.equal(res.challenge, INVALID_TOKEN, `${name}: challenge`)
  t.equal(up.seen.length, before, `${name}: upstream saw nothing`)
}

/** Asserts the token is accepted and the upstream saw the request with its `sub`. */
async function accepted (t: TapTest, gw: TestGateway, up: Upstream, token: string, sub: string, name: string): Promise<void> {
  const before = up.seen.length
  const res = await call(gw, token)
  t.equal(res.status, 200, `${name}: status (${res.text.slice(0, 120)})`)
  t.equal(up.seen.length, before + 1, `${name}: upstream saw it once`)
  t.equal(up.seen.at(-1)?.headers['x-user-id'], sub, `${name}: X-User-Id from the token`)
  t.equal(up.seen.at(-1)?.headers.authorization, undefined, `${name}: token not forwarded`)
}


const up = await startUpstream()
const gw = await startGateway({ name: 'token-zoo', config: { routes: [{ path: '/', upstream: up.url }] } })
t.teardown(async () => { await gw.close(); await up.close() })

t.test('every zoo token maps to its documented code and never reaches the upstream', async (t) => {
  const z = zoo()
  const expected: Record<string, string> = {
    expired: 'JOTGATE_TOKEN_EXPIRED',
    notYetValid: 'JOTGATE_TOKEN_NOT_YET_VALID',
    iatFuture: 'JOTGATE_TOKEN_NOT_YET_VALID',
    wrongIssuer: 'JOTGATE_TOKEN_ISSUER',
    noIssuer: 'JOTGATE_TOKEN_ISSUER',
    wrongAudience: 'JOTGATE_TOKEN_AUDIENCE',
    noExp: 'JOTGATE_TOKEN_MALFORMED',
    expString: 'JOTGATE_TOKEN_MALFORMED',
    crit: 'JOTGATE_TOKEN_MALFORMED',
    jwe: 'JOTGATE_TOKEN_MALFORMED',
    b64false: 'JOTGATE_TOKEN_MALFORMED',
    padded: 'JOTGATE_TOKEN_MALFORMED',
    garbage: 'JOTGATE_TOKEN_MALFORMED',
    twoSegments: 'JOTGATE_TOKEN_MALFORMED',
    tooLong: 'JOTGATE_TOKEN_LIFETIME',
    unknownKid: 'JOTGATE_TOKEN_KEY_UNKNOWN',
    algNone: 'JOTGATE_TOKEN_ALGORITHM',
    algNoneSigned: 'JOTGATE_TOKEN_ALGORITHM',
    algMismatch: 'JOTGATE_TOKEN_ALGORITHM',
    algCase: 'JOTGATE_TOKEN_ALGORITHM',
    // Header HS256, kid rs256 whose key is pinned to RS256: alg-mismatch.
    hsWithPublicKey: 'JOTGATE_TOKEN_ALGORITHM',
    badSignature: 'JOTGATE_TOKEN_SIGNATURE'
  }
  const names = Object.keys(z).filter((n) => n !== 'good')
  t.same(names.slice().sort(), Object.keys(expected).sort(), 'every zoo entry has an expectation')
  for (const name of names) await refused(t, gw, up, z[name as keyof typeof z], expected[name]!, name)
  // Positive control through the same gateway and route.
  await accepted(t, gw, up, z.good, 'alice', 'good')
})

t.test('header tricks: embedded keys, key URLs, odd kid and iss values', async (t) => {
  const attacker = { ...KEYS.es256!, signKey: (await import('node:crypto')).generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey }
  const jwk = attacker.signKey.export({ format: 'jwk' })
  const cases: Array<[string, string, string]> = [
    // RFC 8725 / CVE-2018-0114: a key in the header is never trusted.
    ['embedded jwk, attacker-signed', mint({ key: attacker, header: { jwk } }), 'JOTGATE_TOKEN_SIGNATURE'],
    ['embedded jwk, no kid', mint({ key: attacker, header: { kid: undefined, jwk } }), 'JOTGATE_TOKEN_SIGNATURE'],
    ['jku to an attacker URL', mint({ key: attacker, header: { kid: 'evil', jku: 'http://127.0.0.1:1/jwks.json' } }), 'JOTGATE_TOKEN_KEY_UNKNOWN'],
    ['x5u to an attacker URL', mint({ key: attacker, header: { x5u: 'http://127.0.0.1:1/cert.pem' } }), 'JOTGATE_TOKEN_SIGNATURE'],
    ['kid __proto__', mint({ header: { kid: '__proto__' } }), 'JOTGATE_TOKEN_KEY_UNKNOWN'],
    ['kid not a string', mint({ header: { kid: 1 } }), 'JOTGATE_TOKEN_MALFORMED'],
    ['iss __proto__', mint({ payload: claims({ iss: '__proto__' }) }), 'JOTGATE_TOKEN_ISSUER'],
    ['iss with trailing slash', mint({ payload: claims({ iss: `${ISSUER}/` }) }), 'JOTGATE_TOKEN_ISSUER'],
    ['sub not a string', mint({ payload: claims({ sub: 42 }) }), 'JOTGATE_TOKEN_MALFORMED'],
    ['aud array without ours', mint({ payload: claims({ aud: ['other', 'x'] }) }), 'JOTGATE_TOKEN_AUDIENCE'],
    ['no aud', mint({ payload: claims({ aud: undefined }) }), 'JOTGATE_TOKEN_AUDIENCE'],
    ['payload a JSON array', signed({ alg: 'ES256', kid: 'es256' }, [1, 2]), 'JOTGATE_TOKEN_MALFORMED'],
    ['header with + in base64', swapToStandardB64(mint({ header: { pad: '???>>>~~~' } })), 'JOTGATE_TOKEN_MALFORMED'],
    ['ES256 signature one byte short', truncateSignature(mint()), 'JOTGATE_TOKEN_SIGNATURE'],
    ['ES256 signed by a P-384 key (wrong length)', mint({ key: { ...KEYS.es256!, signKey: KEYS.es384!.signKey } }), 'JOTGATE_TOKEN_SIGNATURE'],
    ['alg NONE spelled in capitals', `${b64({ alg: 'NONE', kid: 'es256' })}.${b64(claims())}.`, 'JOTGATE_TOKEN_ALGORITHM'],
    ['HS256 token under the ES256 kid', mint({ key: { ...KEYS.hs256!, kid: 'es256' } }), 'JOTGATE_TOKEN_ALGORITHM'],
    ['exp beyond the tolerance', mint({ payload: claims({ iat: now() - 100, nbf: now() - 100, exp: now() - 31 }) }), 'JOTGATE_TOKEN_EXPIRED'],
    ['nbf beyond the tolerance', mint({ payload: claims({ nbf: now() + 45 }) }), 'JOTGATE_TOKEN_NOT_YET_VALID'],
    ['exp - now over maxLifetime without iat', mint({ payload: claims({ iat: undefined, exp: now() + 25 * 3600 }) }), 'JOTGATE_TOKEN_LIFETIME']
  ]
  for (const [name, token, code] of cases) await refused(t, gw, up, token, code, name)
  // Within the 30 s clock tolerance both ways, and an aud array holding ours: accepted.
  await accepted(t, gw, up, mint({ payload: claims({ exp: now() - 10 }) }), 'alice', 'expired 10 s ago (tolerance)')
  await accepted(t, gw, up, mint({ payload: claims({ nbf: now() + 10, iat: now() + 10 }) }), 'alice', 'nbf 10 s ahead (tolerance)')
  await accepted(t, gw, up, mint({ payload: claims({ aud: ['other', AUDIENCE] }) }), 'alice', 'aud array holding ours')
})

t.test('a good token for each of the 13 zoo keys is accepted', async (t) => {
  const algs = new Set<string>()
  for (const key of Object.values(KEYS)) {
    algs.add(key.alg)
    await accepted(t, gw, up, mint({ key, payload: claims({ sub: `user-${key.kid}` }) }), `user-${key.kid}`, `${key.alg} (${key.kid})`)
  }
  t.equal(algs.size, 13, 'HS*, RS*, PS*, ES* and EdDSA all covered')
})

t.test('a token without kid: accepted when one key of the issuer has its alg', async (t) => {
  // keyConfigs() holds one ES256 key (es256) and one RS256 key (rs256).
  await accepted(t, gw, up, mint({ key: KEYS.es256!, header: { kid: undefined }, payload: claims({ sub: 'no-kid-es' }) }), 'no-kid-es', 'ES256 without kid')
  await accepted(t, gw, up, mint({ key: KEYS.rs256!, header: { kid: undefined }, payload: claims({ sub: 'no-kid-rs' }) }), 'no-kid-rs', 'RS256 without kid')
  // Without kid, the signature must still be the one key's.
  await refused(t, gw, up, mint({ key: { ...KEYS.es256!, signKey: KEYS.es384!.signKey }, header: { kid: undefined, alg: 'ES256' }, signAlg: 'ES256' }), 'JOTGATE_TOKEN_SIGNATURE', 'ES256 without kid, other key')
})

t.test('revocation of a cached token is honoured on the next request', async (t) => {
  const payload = claims({ sub: 'revoke-me' })
  const token = mint({ payload })
  // Twice: the second call is a verified-token cache hit.
  await accepted(t, gw, up, token, 'revoke-me', 'before revocation (first)')
  await accepted(t, gw, up, token, 'revoke-me', 'before revocation (cached)')
  await gw.gateway.store.revokeJti(payload.jti as string, payload.exp as number)
  await refused(t, gw, up, token, 'JOTGATE_TOKEN_REVOKED', 'after revocation')
  await refused(t, gw, up, token, 'JOTGATE_TOKEN_REVOKED', 'after revocation (again)')
  // Positive control: another token of the same user still works.
  await accepted(t, gw, up, mint({ payload: claims({ sub: 'revoke-me' }) }), 'revoke-me', 'another jti')
})

t.test('revocation by session and by subject', async (t) => {
  const session = claims({ sub: 'sid-user' })
  const sameSession = mint({ payload: claims({ sub: 'sid-user', sid: session.sid }) })
  await accepted(t, gw, up, mint({ payload: session }), 'sid-user', 'session token before')
  await gw.gateway.store.revokeSid(session.sid as string, 600)
  await refused(t, gw, up, mint({ payload: session }), 'JOTGATE_TOKEN_REVOKED', 'session token after revokeSid')
  await refused(t, gw, up, sameSession, 'JOTGATE_TOKEN_REVOKED', 'another token of the session')
  await accepted(t, gw, up, mint({ payload: claims({ sub: 'sid-user' }) }), 'sid-user', 'a token of another session')

  const at = now()
  const old = mint({ payload: claims({ sub: 'sub-user', iat: at - 5 }) })
  const same = mint({ payload: claims({ sub: 'sub-user', iat: at }) })
  await accepted(t, gw, up, old, 'sub-user', 'older token before revokeSub')
  await gw.gateway.store.revokeSub('sub-user', at, 600)
  await refused(t, gw, up, old, 'JOTGATE_TOKEN_REVOKED', 'issued before the cut-off')
  await refused(t, gw, up, same, 'JOTGATE_TOKEN_REVOKED', 'issued at the cut-off')
  await refused(t, gw, up, mint({ payload: claims({ sub: 'sub-user', iat: undefined }) }), 'JOTGATE_TOKEN_REVOKED', 'no iat under a revoked sub (fail closed)')
  await accepted(t, gw, up, mint({ payload: claims({ sub: 'sub-user', iat: at + 1, nbf: at + 1 }) }), 'sub-user', 'issued after the cut-off')
  await accepted(t, gw, up, mint({ payload: claims({ sub: 'other-user', iat: at - 5 }) }), 'other-user', 'another subject')
})

t.test('two keys share an alg; a small maxTokenBytes', async (t) => {
  const second: ZooKey = { kid: 'hs256-b', alg: 'HS256', signKey: randomBytes(32), config: {} }
  second.config = { kid: second.kid, alg: 'HS256', secretBase64: (second.signKey as Buffer).toString('base64') }
  const up2 = await startUpstream()
  const gw2 = await startGateway({
    name: 'token-zoo-2',
    config: {
      tokens: { issuer: ISSUER, audience: [AUDIENCE], keys: [...keyConfigs(), second.config], maxTokenBytes: 512 },
      routes: [{ path: '/', upstream: up2.url }]
    }
  })
  t.teardown(async () => { await gw2.close(); await up2.close() })

  // Positive controls: each HS256 key by its kid.
  await accepted(t, gw2, up2, mint({ key: KEYS.hs256!, payload: claims({ sub: 'h1' }) }), 'h1', 'hs256 with kid')
  await accepted(t, gw2, up2, mint({ key: second, payload: claims({ sub: 'h2' }) }), 'h2', 'hs256-b with kid')
  await accepted(t, gw2, up2, mint({ key: KEYS.es256!, header: { kid: undefined }, payload: claims({ sub: 'e1' }) }), 'e1', 'ES256 without kid still unambiguous')
  // Two HS256 keys: a token without kid names no one key.
  await refused(t, gw2, up2, mint({ key: KEYS.hs256!, header: { kid: undefined } }), 'JOTGATE_TOKEN_KEY_UNKNOWN', 'HS256 without kid, two candidates')
  await refused(t, gw2, up2, mint({ key: second, header: { kid: undefined } }), 'JOTGATE_TOKEN_KEY_UNKNOWN', 'HS256-b without kid, two candidates')

  // Longer than maxTokenBytes: refused before parsing, however valid.
  const big = mint({ key: KEYS.hs256!, payload: claims({ pad: 'x'.repeat(600) }) })
  t.ok(big.length > 512, 'the token is over 512 bytes')
  await refused(t, gw2, up2, big, 'JOTGATE_TOKEN_MALFORMED', 'over maxTokenBytes')
})

t.test('an oversized token is accepted by the default gateway (control for maxTokenBytes)', async (t) => {
  const big = mint({ key: KEYS.hs256!, payload: claims({ pad: 'x'.repeat(600) }) })
  await accepted(t, gw, up, big, 'alice', 'over 512 bytes, under 8192')
})

/** A token whose payload is any JSON value (mint() takes objects only). */
function signed (header: Record<string, unknown>, payload: unknown): string {
  const input = `${b64(header)}.${b64(payload)}`
  return `${input}.${signInput('ES256', KEYS.es256!.signKey, input)}`
}

/** Re-spells a base64url header with the standard alphabet (`-` -> `+`, `_` -> `/`). */
function swapToStandardB64 (token: string): string {
  const [h, p, s] = token.split('.') as [string, string, string]
  const std = h.replace(/-/g, '+').replace(/_/g, '/')
  if (std === h) throw new Error('header has no - or _ to re-spell')
  return `${std}.${p}.${s}`
}

/** Drops the last byte of the signature, re-encoded canonically. */
function truncateSignature (token: string): string {
  const [h, p, sig] = token.split('.') as [string, string, string]
  const bytes = Buffer.from(sig, 'base64url')
  return `${h}.${p}.${bytes.subarray(0, bytes.length - 1).toString('base64url')}`
}
