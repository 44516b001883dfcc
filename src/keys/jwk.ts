/**
 * Public JWKs (RFC 7517), their RFC 7638 thumbprints and the JWKS document
 * served at `/.well-known/jwks.json` (CONTRACT section 4).
 */
import { createHash, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto'
import type { Algorithm } from '../config/schema.js'

/** The only members copied into a published JWK: no private member can leak. */
const PUBLIC_MEMBERS = ['kty', 'n', 'e', 'crv', 'x', 'y'] as const

/** RFC 7638 section 3.2: the required members per kty, in lexicographic order. */
const THUMBPRINT_MEMBERS: Record<string, readonly string[]> = {
  RSA: ['e', 'kty', 'n'],
  EC: ['crv', 'kty', 'x', 'y'],
  OKP: ['crv', 'kty', 'x']
}

/**
 * The public JWK of an asymmetric key, with `kid`, `alg` and `use: 'sig'`.
 * Never includes private members (d, p, q, dp, dq, qi). Returns undefined for
 * secret (HMAC) keys, which must never be published.
 */
export function publicJwk (kid: string, alg: Algorithm, key: KeyObject): Record<string, string> | undefined {
  if (key.type === 'secret') return undefined
  const exported = exportPublic(key)
  const jwk: Record<string, string> = { kid }
  for (const member of PUBLIC_MEMBERS) {
    const value = exported[member]
    if (typeof value === 'string') jwk[member] = value
  }
  jwk.alg = alg
  jwk.use = 'sig'
  return jwk
}

/** RFC 7638 JWK thumbprint (SHA-256, base64url) of a public key KeyObject (RSA, EC, OKP). */
export function jwkThumbprint (key: KeyObject): string {
  if (key.type === 'secret') throw new TypeError('a secret key has no JWK thumbprint')
  const jwk = exportPublic(key)
  const members = THUMBPRINT_MEMBERS[jwk.kty ?? '']
  if (members === undefined) throw new TypeError(`no JWK thumbprint for key type ${String(jwk.kty)}`)
  // JSON.stringify of string members in a fixed order is exactly the
  // whitespace-free canonical form of RFC 7638 section 3.3.
  const canonical: Record<string, unknown> = {}
  for (const member of members) canonical[member] = jwk[member]
  return createHash('sha256').update(JSON.stringify(canonical)).digest('base64url')
}

/** The JWKS document `{ keys: [...] }` of the given keys (asymmetric only, in order). */
export function jwksDocument (keys: readonly { kid: string, alg: Algorithm, verifyKey: KeyObject }[]): { keys: Record<string, string>[] } {
  const out: Record<string, string>[] = []
  for (const key of keys) {
    const jwk = publicJwk(key.kid, key.alg, key.verifyKey)
    if (jwk !== undefined) out.push(jwk)
  }
  return { keys: out }
}

/** The JWK of the public half of `key` (a private key is reduced to its public key first). */
function exportPublic (key: KeyObject): JsonWebKey {
  const pub = key.type === 'private' ? createPublicKey(key) : key
  // Node cannot export an RSASSA-PSS-only key as a JWK, yet PS* accepts one:
  // its SPKI holds a plain RSAPublicKey (RFC 4055), which we re-import as RSA.
  if (pub.asymmetricKeyType === 'rsa-pss') {
    return rsaPublicKeyOf(pub).export({ format: 'jwk' })
  }
  return pub.export({ format: 'jwk' })
}

function rsaPublicKeyOf (key: KeyObject): KeyObject {
  const spki = key.export({ type: 'spki', format: 'der' })
  // SubjectPublicKeyInfo ::= SEQUENCE { algorithm SEQUENCE, subjectPublicKey BIT STRING }
  const outer = derElement(spki, 0, 0x30)
  const algorithm = derElement(spki, outer.start, 0x30)
  const bits = derElement(spki, algorithm.end, 0x03)
  // The first content byte of a BIT STRING counts the unused bits: 0 here.
  const pkcs1 = spki.subarray(bits.start + 1, bits.end)
  return createPublicKey({ key: pkcs1, format: 'der', type: 'pkcs1' })
}

/** One DER element at `offset`: the bounds of its content. */
function derElement (der: Buffer, offset: number, tag: number): { start: number, end: number } {
  if (der[offset] !== tag) throw new TypeError('unexpected DER structure in SPKI')
  let length = der[offset + 1] ?? 0
  let start = offset + 2
  if (length & 0x80) {
    const count = length & 0x7f
    length = 0
    for (let i = 0; i < count; i++) length = length * 256 + (der[start + i] ?? 0)
    start += count
  }
  if (start + length > der.length) throw new TypeError('truncated DER in SPKI')
  return { start, end: start + length }
}
