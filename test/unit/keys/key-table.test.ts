import t from 'tap'
import { constants, createPublicKey, createSecretKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto'
import { createSigner } from 'fast-jwt'
import { POOL_CHECKS, createVerifyKey } from '../../../src/keys/key-table.js'
import type { Algorithm } from '../../../src/config/schema.js'

// createVerifyKey checks HMACs at once (src/keys/hmac.ts) and public-key
// signatures with node:crypto on the thread pool. These cases pin what jotgate relies on,
// for every algorithm the config accepts: true for the key's own
// signature, false for anything else; an HMAC answers at once, a public
// key with a promise.

// fast-jwt's signer takes a private key as PEM text.
interface Case { alg: Algorithm, signKey: string | Buffer, verifyKey: KeyObject, otherSignKey: string | Buffer }

function pair (type: 'rsa' | 'rsa-pss' | 'ec' | 'ed25519', options: object = {}): { signKey: KeyObject, verifyKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync(type as 'rsa', { modulusLength: 2048, ...options })
  return { signKey: privateKey, verifyKey: publicKey }
}

function secretCase (alg: Algorithm, bytes: number): Case {
  const secret = randomBytes(bytes)
  return { alg, signKey: secret, verifyKey: createSecretKey(secret), otherSignKey: randomBytes(bytes) }
}

function pairCase (alg: Algorithm, make: () => { signKey: KeyObject, verifyKey: KeyObject }): Case {
  const pem = (key: KeyObject) => key.export({ type: 'pkcs8', format: 'pem' }) as string
  const one = make()
  return { alg, signKey: pem(one.signKey), verifyKey: one.verifyKey, otherSignKey: pem(make().signKey) }
}

const rsa = () => pair('rsa')
const cases: Case[] = [
  secretCase('HS256', 32),
  secretCase('HS384', 48),
  secretCase('HS512', 64),
  pairCase('RS256', rsa),
  pairCase('RS384', rsa),
  pairCase('RS512', rsa),
  pairCase('PS256', rsa),
  pairCase('PS384', rsa),
  pairCase('PS512', rsa),
  pairCase('ES256', () => pair('ec', { namedCurve: 'P-256' })),
  pairCase('ES384', () => pair('ec', { namedCurve: 'P-384' })),
  pairCase('ES512', () => pair('ec', { namedCurve: 'P-521' })),
  pairCase('EdDSA', () => pair('ed25519'))
]

function split (token: string): [string, Buffer] {
  const dot = token.lastIndexOf('.')
  return [token.slice(0, dot), Buffer.from(token.slice(dot + 1), 'base64url')]
}

for (const c of cases) {
  t.test(c.alg, async (t) => {
    const signer = createSigner({ key: c.signKey, algorithm: c.alg, kid: 'k1' })
    const key = createVerifyKey('k1', c.alg, c.verifyKey)
    t.match(key, { kid: 'k1', alg: c.alg })
    const [input, signature] = split(signer({ sub: 'alice', exp: 2_000_000_000 }))
    const first = key.verifySignature(input, signature)
    t.equal(first instanceof Promise, !c.alg.startsWith('HS'), c.alg.startsWith('HS') ? 'an HMAC is checked at once' : 'a public key answers with a promise')
    t.equal(await first, true, 'its own signature verifies')

    const [otherInput] = split(signer({ sub: 'mallory', exp: 2_000_000_000 }))
    t.equal(await key.verifySignature(otherInput, signature), false, 'the signature of other claims does not')
    const [, foreign] = split(createSigner({ key: c.otherSignKey, algorithm: c.alg })({ sub: 'alice', exp: 2_000_000_000 }))
    // A foreign key's signature over different header text: check it against
    // our input, which it does not sign.
    t.equal(await key.verifySignature(input, foreign), false, 'another key\'s signature does not')
    const flipped = Buffer.from(signature)
    flipped[flipped.length - 1]! ^= 1
    t.equal(await key.verifySignature(input, flipped), false, 'one flipped bit does not')
    t.equal(await key.verifySignature(input, signature.subarray(0, -3)), false, 'a shortened signature does not')
  })
}

t.test('an RSA-PSS key (which fast-jwt cannot sign with) verifies PS256', async (t) => {
  const { signKey, verifyKey } = pair('rsa-pss')
  const key = createVerifyKey('k1', 'PS256', verifyKey)
  const input = 'eyJhbGciOiJQUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9'
  const signature = sign('sha256', Buffer.from(input), { key: signKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })
  t.equal(await key.verifySignature(input, signature), true)
  t.equal(await key.verifySignature(`${input}x`, signature), false)
})

t.test('ECDSA: only R || S (RFC 7518 section 3.4) verifies, not the DER form of the same signature', async (t) => {
  const { signKey, verifyKey } = pair('ec', { namedCurve: 'P-256' })
  const key = createVerifyKey('k1', 'ES256', verifyKey)
  const input = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9'
  const der = sign('sha256', Buffer.from(input), signKey)
  t.equal(await key.verifySignature(input, sign('sha256', Buffer.from(input), { key: signKey, dsaEncoding: 'ieee-p1363' })), true, 'P1363 (the JWS form) verifies')
  t.equal(await key.verifySignature(input, der), false, 'DER does not')
  t.equal(await key.verifySignature(input, Buffer.from('AAAA', 'base64url')), false, 'three bytes do not')
})

t.test('a key that cannot serve its algorithm is refused when the key is built', async (t) => {
  const secret = createSecretKey(randomBytes(32))
  const { verifyKey: rsaKey } = rsa()
  const { verifyKey: ecKey } = pair('ec', { namedCurve: 'P-256' })
  t.throws(() => createVerifyKey('k', 'HS256', rsaKey), /HS256 needs a secret/, 'an RSA public key as an HMAC secret')
  t.throws(() => createVerifyKey('k', 'RS256', secret), TypeError)
  t.throws(() => createVerifyKey('k', 'ES256', rsaKey), /needs an EC key/)
  t.throws(() => createVerifyKey('k', 'ES384', ecKey), /needs secp384r1/)
  t.throws(() => createVerifyKey('k', 'EdDSA', ecKey), /needs an Ed25519 key/)
  t.throws(() => createVerifyKey('k', 'RS256', createPublicKey(pair('rsa', { modulusLength: 1024 }).signKey)), /at least 2048 bits/)
})

t.test('past POOL_CHECKS checks at once, public-key checks run on the main thread', async (t) => {
  const { signKey, verifyKey } = pair('ec', { namedCurve: 'P-256' })
  const key = createVerifyKey('k1', 'ES256', verifyKey)
  const input = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9'
  const signature = sign('sha256', Buffer.from(input), { key: signKey, dsaEncoding: 'ieee-p1363' })
  t.equal(POOL_CHECKS, 16 * (Number(process.env.UV_THREADPOOL_SIZE) || 4))
  const results = Array.from({ length: POOL_CHECKS + 10 }, () => key.verifySignature(input, signature))
  t.equal(results.filter((r) => r instanceof Promise).length, POOL_CHECKS, 'the first POOL_CHECKS go to the pool')
  t.same(results.slice(POOL_CHECKS), Array(10).fill(true), 'the rest answer at once, verified')
  t.same(await Promise.all(results), Array(POOL_CHECKS + 10).fill(true))
  const again = key.verifySignature(`${input}x`, signature)
  t.ok(again instanceof Promise, 'the pool takes checks again once they finished')
  t.equal(await again, false)
})
