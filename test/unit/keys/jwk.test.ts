import t from 'tap'
import { createPublicKey, createSecretKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto'
import { jwkThumbprint, jwksDocument, publicJwk } from '../../../src/keys/jwk.js'
import type { Algorithm } from '../../../src/config/schema.js'

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']

const pairs: Array<[Algorithm, string, { publicKey: KeyObject, privateKey: KeyObject }]> = [
  ['RS256', 'RSA', generateKeyPairSync('rsa', { modulusLength: 2048 })],
  ['PS256', 'RSA', generateKeyPairSync('rsa-pss', { modulusLength: 2048 })],
  ['ES256', 'EC', generateKeyPairSync('ec', { namedCurve: 'P-256' })],
  ['ES384', 'EC', generateKeyPairSync('ec', { namedCurve: 'P-384' })],
  ['ES512', 'EC', generateKeyPairSync('ec', { namedCurve: 'P-521' })],
  ['EdDSA', 'OKP', generateKeyPairSync('ed25519')]
]

for (const [alg, kty, { publicKey, privateKey }] of pairs) {
  t.test(`${alg} (${publicKey.asymmetricKeyType})`, async (t) => {
    // A private KeyObject must be reduced to its public half, never leaked.
    for (const key of [publicKey, privateKey]) {
      const jwk = publicJwk('k1', alg, key)!
      t.ok(jwk, 'a JWK')
      for (const member of PRIVATE_MEMBERS) t.notOk(member in jwk, `no ${member}`)
      t.match(jwk, { kid: 'k1', alg, use: 'sig', kty })
      // The published JWK imports back as the same public key.
      const back = createPublicKey({ key: jwk, format: 'jwk' })
      t.equal(jwkThumbprint(back), jwkThumbprint(publicKey), 'round trip')
    }
    t.equal(jwkThumbprint(privateKey), jwkThumbprint(publicKey), 'same thumbprint from the private key')
    t.match(jwkThumbprint(publicKey), /^[A-Za-z0-9_-]{43}$/)
  })
}

t.test('an HMAC secret is never published', async (t) => {
  const secret = createSecretKey(randomBytes(32))
  t.equal(publicJwk('h1', 'HS256', secret), undefined)
  t.throws(() => jwkThumbprint(secret), TypeError)
})

t.test('RFC 7638 section 3.1 example thumbprint', async (t) => {
  const jwk = {
    kty: 'RSA',
    n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
    e: 'AQAB',
    alg: 'RS256',
    kid: '2011-04-29'
  }
  const key = createPublicKey({ key: jwk, format: 'jwk' })
  t.equal(jwkThumbprint(key), 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs')
})

t.test('jwksDocument keeps asymmetric keys in order and drops secrets', async (t) => {
  const [rs, es] = [pairs[0]![2].publicKey, pairs[2]![2].publicKey]
  const doc = jwksDocument([
    { kid: 'a', alg: 'RS256', verifyKey: rs },
    { kid: 'h', alg: 'HS256', verifyKey: createSecretKey(randomBytes(32)) },
    { kid: 'b', alg: 'ES256', verifyKey: es }
  ])
  t.same(doc.keys.map((k) => k.kid), ['a', 'b'])
  t.same(jwksDocument([]), { keys: [] })
  t.notMatch(JSON.stringify(doc), /"(d|k)":/)
})
