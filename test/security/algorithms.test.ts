/**
 * Attack family: algorithm and signature (CONTRACT section 3 step 4). The
 * algorithm comes from the key, never from the token: `none` in any
 * spelling, an HMAC made with a public key, an algorithm outside a key's pin
 * are refused before any signature check; signatures that are empty,
 * truncated, flipped, re-encoded, all-zero or out of range never verify.
 * Every case goes through a real gateway and the upstream must see nothing;
 * a good token for every algorithm is the positive control.
 */
import t from 'tap'
import { createHmac, createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto'
import { startUpstream } from '../helpers/upstream.js'
import { startGateway } from '../helpers/gateway.js'
import { AUDIENCE, ISSUER, KEYS, b64, claims, mint, signInput, zoo, type ZooKey } from '../helpers/zoo.js'
import { ZOO_CASES, accepted, refuseAll, refused, zooCases, type TokenCase } from './kit.js'

const up = await startUpstream()
const routes = [{ path: '/', upstream: up.url }]
const gw = await startGateway({ name: 'sec-algorithms', config: { routes } })
// Only asymmetric keys: an HS256 token without kid has no key at all.
const asym = await startGateway({
  name: 'sec-algorithms-asym',
  config: { tokens: { issuer: ISSUER, audience: [AUDIENCE], keys: [KEYS.es256!.config, KEYS.rs256!.config, KEYS.eddsa!.config] }, routes }
})
t.teardown(async () => { await gw.close(); await asym.close(); await up.close() })

const ALL_ALGS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']
const publicOf = (key: ZooKey): KeyObject => createPublicKey(key.signKey as KeyObject)
const split = (token: string): [string, string, Buffer] => {
  const [h, p, s] = token.split('.') as [string, string, string]
  return [h, p, Buffer.from(s, 'base64url')]
}
const withSignature = (token: string, sig: Buffer | string): string => {
  const [h, p] = split(token)
  return `${h}.${p}.${typeof sig === 'string' ? sig : sig.toString('base64url')}`
}
const hmac = (alg: string, secret: Buffer, input: string): string => createHmac(`sha${alg.slice(2)}`, secret).update(input).digest('base64url')

t.test('the zoo: every token has a family; this family\'s are refused', async (t) => {
  const z = zoo()
  const names = Object.keys(z).filter((n) => n !== 'good')
  t.same(names.sort(), Object.keys(ZOO_CASES).sort(), 'every zoo entry has an expectation (kit.ts ZOO_CASES)')
  await refuseAll(t, gw, up, zooCases(z, 'algorithms'))
  await accepted(t, gw, up, z.good, 'alice', 'zoo good (positive control)')
})

t.test('`none` in every spelling never verifies', async (t) => {
  const spellings: string[] = []
  for (let bits = 0; bits < 16; bits++) spellings.push([...'none'].map((c, i) => (bits & (1 << i)) !== 0 ? c.toUpperCase() : c).join(''))
  const cases: TokenCase[] = []
  for (const alg of spellings) {
    // RFC 7515 appendix A.5: an unsecured JWS has an empty signature.
    cases.push({ name: `alg ${alg}, empty signature`, src: 'RFC 8725 section 2.1; CVE-2018-1000531; jwt_tool -X a', token: `${b64({ alg, typ: 'JWT', kid: 'es256' })}.${b64(claims())}.`, code: 'JOTGATE_TOKEN_ALGORITHM' })
  }
  const signedNone = (header: Record<string, unknown>, key: ZooKey): string => {
    const input = `${b64(header)}.${b64(claims())}`
    return `${input}.${signInput(key.alg, key.signKey, input)}`
  }
  cases.push(
    { name: 'alg none, no kid, empty signature', src: 'Auth0 disclosure 2015 (McLean, "Critical vulnerabilities in JSON Web Token libraries")', token: `${b64({ alg: 'none' })}.${b64(claims())}.`, code: 'JOTGATE_TOKEN_ALGORITHM' },
    { name: 'alg none, signed by es256', src: 'RFC 8725 section 3.1', token: signedNone({ alg: 'none', kid: 'es256' }, KEYS.es256!), code: 'JOTGATE_TOKEN_ALGORITHM' },
    { name: 'alg None, HMAC by the hs256 secret', src: 'RFC 8725 section 3.1', token: signedNone({ alg: 'None', kid: 'hs256' }, KEYS.hs256!), code: 'JOTGATE_TOKEN_ALGORITHM' },
    { name: 'alg nOnE, signature garbage', src: 'jwt_tool -X a', token: `${b64({ alg: 'nOnE', kid: 'es256' })}.${b64(claims())}.AAAA`, code: 'JOTGATE_TOKEN_ALGORITHM' },
    { name: 'alg none, no signature segment at all', src: 'RFC 7519 section 6.1', token: `${b64({ alg: 'none' })}.${b64(claims())}`, code: 'JOTGATE_TOKEN_MALFORMED' },
    // Look-alikes are simply another algorithm than the key's.
    // Not `none`: then the empty signature fails.
    { name: 'alg "none " (trailing space)', src: 'RFC 7515 section 4.1.1 (exact string)', token: `${b64({ alg: 'none ', kid: 'es256' })}.${b64(claims())}.`, code: 'JOTGATE_TOKEN_SIGNATURE' },
    { name: 'alg "nоne" (Cyrillic o)', src: 'RFC 7515 section 4.1.1 (exact string)', token: signedNone({ alg: 'n\u043ene', kid: 'es256' }, KEYS.es256!), code: 'JOTGATE_TOKEN_ALGORITHM' },
    { name: 'alg missing', src: 'RFC 7515 section 4.1.1 (alg required)', token: signedNone({ kid: 'es256' }, KEYS.es256!), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'alg null', src: 'RFC 7515 section 4.1.1', token: signedNone({ alg: null, kid: 'es256' }, KEYS.es256!), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'alg ["none"]', src: 'RFC 7515 section 4.1.1 (a string)', token: signedNone({ alg: ['none'], kid: 'es256' }, KEYS.es256!), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'alg ["ES256"]', src: 'RFC 7515 section 4.1.1 (a string)', token: signedNone({ alg: ['ES256'], kid: 'es256' }, KEYS.es256!), code: 'JOTGATE_TOKEN_MALFORMED' },
    // Formerly in test/integration/token-zoo.test.ts.
    { name: 'alg NONE spelled in capitals', src: 'RFC 8725 section 2.1', token: `${b64({ alg: 'NONE', kid: 'es256' })}.${b64(claims())}.`, code: 'JOTGATE_TOKEN_ALGORITHM' }
  )
  await refuseAll(t, gw, up, cases)
  await refuseAll(t, asym, up, cases.slice(0, 16))
  await accepted(t, gw, up, mint(), 'alice', 'es256 (positive control)')
})

t.test('empty, truncated and bit-flipped signatures, for every algorithm', async (t) => {
  for (const key of Object.values(KEYS)) {
    const good = mint({ key, payload: claims({ sub: `sig-${key.kid}` }) })
    const [, , sig] = split(good)
    const flip = (index: number, bit: number): Buffer => { const b = Buffer.from(sig); b[index]! ^= 1 << bit; return b }
    const src = 'RFC 7515 section 5.2 step 8; RFC 8725 section 3.3'
    await refuseAll(t, gw, up, [
      { name: `${key.alg}: empty signature`, src: 'RFC 7515 appendix A.5 (empty is unsecured)', token: withSignature(good, ''), code: 'JOTGATE_TOKEN_SIGNATURE' },
      { name: `${key.alg}: one byte short`, src, token: withSignature(good, sig.subarray(0, sig.length - 1)), code: 'JOTGATE_TOKEN_SIGNATURE' },
      { name: `${key.alg}: first half only`, src: 'RFC 7518 section 3.2 (no truncated MACs)', token: withSignature(good, sig.subarray(0, sig.length >> 1)), code: 'JOTGATE_TOKEN_SIGNATURE' },
      { name: `${key.alg}: one byte`, src, token: withSignature(good, sig.subarray(0, 1)), code: 'JOTGATE_TOKEN_SIGNATURE' },
      { name: `${key.alg}: a byte too many`, src, token: withSignature(good, Buffer.concat([sig, Buffer.alloc(1)])), code: 'JOTGATE_TOKEN_SIGNATURE' },
      { name: `${key.alg}: first bit flipped`, src, token: withSignature(good, flip(0, 7)), code: 'JOTGATE_TOKEN_SIGNATURE' },
      { name: `${key.alg}: middle bit flipped`, src, token: withSignature(good, flip(sig.length >> 1, 0)), code: 'JOTGATE_TOKEN_SIGNATURE' },
      { name: `${key.alg}: last bit flipped`, src, token: withSignature(good, flip(sig.length - 1, 0)), code: 'JOTGATE_TOKEN_SIGNATURE' },
      { name: `${key.alg}: all zero`, src: 'CVE-2022-21449 (generalised)', token: withSignature(good, Buffer.alloc(sig.length)), code: 'JOTGATE_TOKEN_SIGNATURE' },
      { name: `${key.alg}: all ones`, src, token: withSignature(good, Buffer.alloc(sig.length, 0xff)), code: 'JOTGATE_TOKEN_SIGNATURE' },
      { name: `${key.alg}: the signature of another token`, src: 'RFC 8725 section 2.7', token: withSignature(good, split(mint({ key }))[2]), code: 'JOTGATE_TOKEN_SIGNATURE' }
    ])
    await accepted(t, gw, up, good, `sig-${key.kid}`, `${key.alg} unaltered (positive control)`)
  }
  // Formerly in test/integration/token-zoo.test.ts.
  await refuseAll(t, gw, up, [
    { name: 'ES256 signature one byte short', src: 'RFC 7518 section 3.4 (64 bytes)', token: withSignature(mint(), split(mint())[2].subarray(0, 63)), code: 'JOTGATE_TOKEN_SIGNATURE' },
    { name: 'ES256 signed by a P-384 key (wrong length)', src: 'RFC 7518 section 3.4', token: mint({ key: { ...KEYS.es256!, signKey: KEYS.es384!.signKey } }), code: 'JOTGATE_TOKEN_SIGNATURE' }
  ])
})

t.test('signatures re-encoded into other base64 forms', async (t) => {
  const cases: TokenCase[] = []
  for (const key of [KEYS.es256!, KEYS.rs256!, KEYS.hs256!, KEYS.eddsa!]) {
    // A token whose signature holds both `-` and `_`, so the re-spellings differ.
    let good = mint({ key })
    for (let i = 0; i < 200 && !/-.*_|_.*-/.test(good.split('.')[2]!); i++) good = mint({ key })
    const [, , sig] = split(good)
    const url = sig.toString('base64url')
    const std = sig.toString('base64')
    const src = 'RFC 7515 section 2 (base64url, no padding); RFC 4648 section 5'
    cases.push(
      { name: `${key.alg}: standard alphabet with padding`, src, token: withSignature(good, std), code: 'JOTGATE_TOKEN_MALFORMED' },
      { name: `${key.alg}: standard alphabet without padding`, src, token: withSignature(good, std.replace(/=+$/, '')), code: 'JOTGATE_TOKEN_MALFORMED' },
      { name: `${key.alg}: base64url with padding`, src, token: withSignature(good, url + '='.repeat((4 - url.length % 4) % 4 || 4)), code: 'JOTGATE_TOKEN_MALFORMED' },
      { name: `${key.alg}: percent-encoded -`, src: 'RFC 3986 section 2.1 (a second spelling)', token: withSignature(good, url.replace('-', '%2D')), code: 'JOTGATE_TOKEN_MALFORMED' },
      { name: `${key.alg}: hex instead of base64url`, src: 'RFC 7515 section 2', token: withSignature(good, sig.toString('hex')), code: 'JOTGATE_TOKEN_SIGNATURE' }
    )
    // Non-zero bits after the last whole byte decode to the same bytes in
    // lenient decoders: a second spelling of one signature (RFC 4648 section 3.5).
    const last = url.length % 4
    if (last !== 0) {
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
      const value = alphabet.indexOf(url.at(-1)!) | (last === 2 ? 0x0f : 0x03)
      cases.push({ name: `${key.alg}: non-zero trailing bits`, src: 'RFC 4648 section 3.5 (canonical encoding)', token: withSignature(good, url.slice(0, -1) + alphabet[value]), code: 'JOTGATE_TOKEN_MALFORMED' })
    }
    await accepted(t, gw, up, good, 'alice', `${key.alg} canonical (positive control)`)
  }
  await refuseAll(t, gw, up, cases)
})

/** RFC 4253 section 6.6 wire format: OpenSSH `ssh-rsa AAAA...` (CVE-2022-29217 used this form). */
function sshRsa (jwk: { n: string, e: string }): Buffer {
  const str = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, 0].map((_, i) => (b.length >>> (24 - 8 * i)) & 0xff)), b])
  const mpint = (b64u: string): Buffer => { const b = Buffer.from(b64u, 'base64url'); return str((b[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.alloc(1), b]) : b) }
  const blob = Buffer.concat([str(Buffer.from('ssh-rsa')), mpint(jwk.e), mpint(jwk.n)])
  return Buffer.from(`ssh-rsa ${blob.toString('base64')}`)
}

t.test('HMAC forged with the public key, in every byte form', async (t) => {
  const jwks = await (await fetch(`${gw.url}/.well-known/jwks.json`)).json() as { keys: Array<Record<string, unknown>> }
  t.ok(jwks.keys.length > 0, 'the gateway publishes its public keys (what an attacker reads)')
  const attack = 'CVE-2016-10555; CVE-2015-9235; RFC 8725 section 2.1; jwt_tool -X k'
  for (const key of [KEYS.rs256!, KEYS.es256!, KEYS.eddsa!]) {
    const pub = publicOf(key)
    const pem = pub.export({ type: 'spki', format: 'pem' }) as string
    const published = jwks.keys.find((k) => k.kid === key.kid)
    t.ok(published, `${key.kid}: published in the JWKS`)
    const forms: Array<[string, Buffer, string]> = [
      ['SPKI PEM as exported (trailing newline)', Buffer.from(pem), attack],
      ['SPKI PEM without the trailing newline', Buffer.from(pem.trimEnd()), 'PortSwigger "algorithm confusion" lab'],
      ['SPKI PEM with CRLF line ends', Buffer.from(pem.replace(/\n/g, '\r\n')), attack],
      ['SPKI PEM after leading whitespace', Buffer.from(`\n  ${pem}`), 'GHSA-mvf2-f6gm-w987 (fast-jwt)'],
      ['SPKI PEM after a comment line', Buffer.from(`# public key\n${pem}`), 'GHSA-ww5h-9m49-7xx4 (fast-jwt)'],
      ['SPKI PEM body (base64 of the DER)', Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, '')), attack],
      ['SPKI DER', pub.export({ type: 'spki', format: 'der' }), attack],
      ['JWK JSON', Buffer.from(JSON.stringify(pub.export({ format: 'jwk' }))), 'CVE-2018-0114 (key material in JSON)'],
      ['JWK JSON as the gateway publishes it', Buffer.from(JSON.stringify(published)), 'RFC 7517 section 4 (JWKS is public)']
    ]
    if (key.alg.startsWith('RS')) {
      const pkcs1 = pub.export({ type: 'pkcs1', format: 'pem' }) as string
      forms.push(
        ['PKCS#1 PEM (BEGIN RSA PUBLIC KEY)', Buffer.from(pkcs1), 'CVE-2023-48223 (fast-jwt); pyjwt PR 277'],
        ['PKCS#1 PEM without the trailing newline', Buffer.from(pkcs1.trimEnd()), 'CVE-2023-48223'],
        ['PKCS#1 DER', pub.export({ type: 'pkcs1', format: 'der' }), 'CVE-2023-48223'],
        ['OpenSSH ssh-rsa', sshRsa(pub.export({ format: 'jwk' }) as { n: string, e: string }), 'CVE-2022-29217 (pyjwt)']
      )
    }
    for (const [form, secret, src] of forms) {
      const forged = (header: Record<string, unknown>, alg = 'HS256'): string => {
        const input = `${b64({ typ: 'JWT', ...header })}.${b64(claims({ sub: 'mallory', roles: ['admin'] }))}`
        return `${input}.${hmac(alg, secret, input)}`
      }
      const name = `${key.kid} ${form}`
      await refuseAll(t, gw, up, [
        { name: `${name}: HS256 under the key's kid`, src, token: forged({ alg: 'HS256', kid: key.kid }), code: 'JOTGATE_TOKEN_ALGORITHM' },
        { name: `${name}: HS512 under the key's kid`, src, token: forged({ alg: 'HS512', kid: key.kid }, 'HS512'), code: 'JOTGATE_TOKEN_ALGORITHM' },
        // Without kid the one HS256 key of the issuer is used: its own secret.
        { name: `${name}: HS256 without kid`, src, token: forged({ alg: 'HS256' }), code: 'JOTGATE_TOKEN_SIGNATURE' },
        { name: `${name}: HS256 under the hs256 kid`, src, token: forged({ alg: 'HS256', kid: 'hs256' }), code: 'JOTGATE_TOKEN_SIGNATURE' },
        { name: `${name}: the key's own alg, an HMAC as signature`, src, token: forged({ alg: key.alg, kid: key.kid }), code: 'JOTGATE_TOKEN_SIGNATURE' }
      ])
      await refuseAll(t, asym, up, [
        { name: `${name}: HS256 under the key's kid (asymmetric keys only)`, src, token: forged({ alg: 'HS256', kid: key.kid }), code: 'JOTGATE_TOKEN_ALGORITHM' },
        { name: `${name}: HS256 without kid (asymmetric keys only)`, src, token: forged({ alg: 'HS256' }), code: 'JOTGATE_TOKEN_KEY_UNKNOWN' }
      ])
    }
  }
  // The zoo's form of the attack, and the positive controls on both gateways.
  await refused(t, gw, up, zoo().hsWithPublicKey, 'JOTGATE_TOKEN_ALGORITHM', `zoo hsWithPublicKey [${ZOO_CASES.hsWithPublicKey.src}]`)
  await accepted(t, gw, up, mint({ key: KEYS.rs256! }), 'alice', 'rs256 (positive control)')
  await accepted(t, asym, up, mint({ key: KEYS.rs256! }), 'alice', 'rs256 on the asymmetric-only gateway (positive control)')
})

t.test('algorithms outside each key\'s pin', async (t) => {
  const cases: TokenCase[] = []
  for (const key of Object.values(KEYS)) {
    for (const alg of [...ALL_ALGS.filter((a) => a !== key.alg), key.alg.toLowerCase(), key.alg.toUpperCase(), `${key.alg} `, 'ES256K', 'Ed25519', 'RS1', 'HS1']) {
      if (alg === key.alg) continue
      // Signed with `alg` where the key can (an RSA key for RS/PS, a secret for HS), else with the key's own.
      const kind = (a: string): string => a.startsWith('HS') ? 'hmac' : /^(RS|PS)/.test(a) ? 'rsa' : a
      const canSign = ALL_ALGS.includes(alg) && kind(alg) === kind(key.alg) && kind(alg) !== alg
      cases.push({ name: `${key.kid} (pinned ${key.alg}) with alg ${JSON.stringify(alg)}`, src: 'RFC 8725 section 3.1; CONTRACT section 3 step 4', token: mint({ key, header: { alg }, signAlg: canSign ? alg : key.alg }), code: 'JOTGATE_TOKEN_ALGORITHM' })
    }
  }
  // Formerly in test/integration/token-zoo.test.ts.
  cases.push({ name: 'HS256 token under the ES256 kid', src: 'RFC 8725 section 3.1', token: mint({ key: { ...KEYS.hs256!, kid: 'es256' } }), code: 'JOTGATE_TOKEN_ALGORITHM' })
  await refuseAll(t, gw, up, cases)
  t.ok(cases.length > 150, `${cases.length} key/algorithm pairs refused`)
})

// Group orders (SEC 2 version 2.0, sections 2.4.2, 2.5.1, 2.6.1).
const ORDER: Record<string, bigint> = {
  ES256: BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551'),
  ES384: BigInt('0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973'),
  ES512: BigInt('0x01ff' + 'ffffffff'.repeat(7) + 'fffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409')
}
const toBig = (b: Buffer): bigint => BigInt(`0x${b.toString('hex') || '0'}`)
const toBytes = (n: bigint, length: number): Buffer => Buffer.from(n.toString(16).padStart(length * 2, '0'), 'hex')

t.test('ECDSA: all-zero and out-of-range values, DER, malleability', async (t) => {
  for (const key of [KEYS.es256!, KEYS.es384!, KEYS.es512!]) {
    const payload = claims({ sub: `malleable-${key.kid}` })
    const good = mint({ key, payload })
    const [h, p, sig] = split(good)
    const size = sig.length / 2
    const n = ORDER[key.alg]!
    const r = toBig(sig.subarray(0, size))
    const s = toBig(sig.subarray(size))
    const rs = (a: bigint, b: bigint): Buffer => Buffer.concat([toBytes(a, size), toBytes(b, size)])
    const der = cryptoSign(`sha${key.alg.slice(2)}`, Buffer.from(`${h}.${p}`), { key: key.signKey as KeyObject, dsaEncoding: 'der' })
    const psychic = 'CVE-2022-21449 ("psychic signatures"); RFC 8725 section 3.3'
    await refuseAll(t, gw, up, [
      { name: `${key.alg}: r = s = 0`, src: psychic, token: withSignature(good, rs(0n, 0n)), code: 'JOTGATE_TOKEN_SIGNATURE' },
      { name: `${key.alg}: r = 0`, src: psychic, token: withSignature(good, rs(0n, s)), code: 'JOTGATE_TOKEN_SIGNATURE' },
      { name: `${key.alg}: s = 0`, src: psychic, token: withSignature(good, rs(r, 0n)), code: 'JOTGATE_TOKEN_SIGNATURE' },
      { name: `${key.alg}: r = s = n (the group order)`, src: psychic, token: withSignature(good, rs(n, n)), code: 'JOTGATE_TOKEN_SIGNATURE' },
      { name: `${key.alg}: r + n`, src: 'SEC 1 section 4.1.4 step 1 (1 <= r < n)', token: withSignature(good, rs(r + n, s)), code: 'JOTGATE_TOKEN_SIGNATURE' },
      { name: `${key.alg}: DER instead of r || s`, src: 'RFC 7518 section 3.4 (fixed-length r || s)', token: withSignature(good, der), code: 'JOTGATE_TOKEN_SIGNATURE' },
      { name: `${key.alg}: r and s each with a leading zero byte`, src: 'RFC 7518 section 3.4', token: withSignature(good, Buffer.concat([Buffer.alloc(1), sig.subarray(0, size), Buffer.alloc(1), sig.subarray(size)])), code: 'JOTGATE_TOKEN_SIGNATURE' }
    ])
    // (r, n - s) verifies too: ECDSA is malleable and RFC 7518 does not ask
    // for low-S, so refusing it would refuse honest issuers half the time.
    // The defence is that nothing is keyed by the token's text: the
    // malleated token carries the same jti, and revoking it refuses both.
    const malleated = withSignature(good, rs(r, n - s))
    t.not(malleated, good, `${key.alg}: (r, n - s) is another spelling of the token`)
    await accepted(t, gw, up, good, `malleable-${key.kid}`, `${key.alg}: the original`)
    await accepted(t, gw, up, malleated, `malleable-${key.kid}`, `${key.alg}: (r, n - s) verifies, same identity [ECDSA malleability, SEC 1 section 4.1.4]`)
    await gw.gateway.store.revokeJti(payload.jti as string, payload.exp as number)
    await refused(t, gw, up, good, 'JOTGATE_TOKEN_REVOKED', `${key.alg}: the original after revoking its jti [CONTRACT section 3 step 5]`)
    await refused(t, gw, up, malleated, 'JOTGATE_TOKEN_REVOKED', `${key.alg}: the malleated spelling after revoking the jti [SEC 1 section 4.1.4; CONTRACT section 3 step 5]`)
  }
})

t.test('EdDSA and RSA: out-of-range and all-zero signatures', async (t) => {
  const ed = mint({ key: KEYS.eddsa! })
  const [, , edSig] = split(ed)
  // Ed25519 S is little-endian; S + L decodes to the same scalar mod L.
  const L = 2n ** 252n + 27742317777372353535851937790883648493n
  const S = toBig(Buffer.from(edSig.subarray(32)).reverse())
  const rsa = mint({ key: KEYS.rs256! })
  const [, , rsaSig] = split(rsa)
  const modulus = toBig(Buffer.from((publicOf(KEYS.rs256!).export({ format: 'jwk' }) as { n: string }).n, 'base64url'))
  await refuseAll(t, gw, up, [
    { name: 'EdDSA: S + L', src: 'RFC 8032 section 5.1.7 (S < L); Ed25519 malleability', token: withSignature(ed, Buffer.concat([edSig.subarray(0, 32), toBytes(S + L, 32).reverse()])), code: 'JOTGATE_TOKEN_SIGNATURE' },
    { name: 'EdDSA: all zero', src: 'CVE-2022-21449 (generalised); RFC 8032 section 5.1.7', token: withSignature(ed, Buffer.alloc(64)), code: 'JOTGATE_TOKEN_SIGNATURE' },
    { name: 'RS256: s + n (one byte longer)', src: 'RFC 8017 section 8.2.2 (s < n, length k)', token: withSignature(rsa, toBytes(toBig(rsaSig) + modulus, 257)), code: 'JOTGATE_TOKEN_SIGNATURE' },
    { name: 'RS256: leading zero byte', src: 'RFC 8017 section 8.2.2 step 1 (length k)', token: withSignature(rsa, Buffer.concat([Buffer.alloc(1), rsaSig])), code: 'JOTGATE_TOKEN_SIGNATURE' },
    { name: 'RS256: s = 1', src: 'RFC 8017 section 5.2.2 (RSAVP1 range)', token: withSignature(rsa, toBytes(1n, 256)), code: 'JOTGATE_TOKEN_SIGNATURE' }
  ])
  await accepted(t, gw, up, ed, 'alice', 'EdDSA (positive control)')
  await accepted(t, gw, up, rsa, 'alice', 'RS256 (positive control)')
})

t.test('a good token for each of the 13 zoo keys is accepted', async (t) => {
  const algs = new Set<string>()
  for (const key of Object.values(KEYS)) {
    algs.add(key.alg)
    await accepted(t, gw, up, mint({ key, payload: claims({ sub: `user-${key.kid}` }) }), `user-${key.kid}`, `${key.alg} (${key.kid})`)
  }
  t.equal(algs.size, 13, 'HS*, RS*, PS*, ES* and EdDSA all covered')
})
