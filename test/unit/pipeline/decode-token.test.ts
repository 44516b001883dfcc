/**
 * decodeToken keeps decoded headers by their text (the tokens of one key
 * share one): a kept header must answer exactly as a fresh decode would,
 * whatever the payload and signature next to it, and cannot be changed.
 */
import t from 'tap'
import fc from 'fast-check'
import { decodeCanonical, decodeToken, isCanonical } from '../../../src/pipeline/decode-token.js'
import { isGatewayError } from '../../../src/errors.js'

const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')
const SIG = b64('signature-bytes')

function refusal (token: string): string | undefined {
  try {
    decodeToken(token, 8192)
    return undefined
  } catch (err) {
    if (!isGatewayError(err)) throw err
    return `${err.code}/${err.reason ?? ''}`
  }
}

t.test('a header seen before: the payload and signature beside it are still checked every time', async (t) => {
  const header = b64({ alg: 'HS256', typ: 'JWT', kid: 'k1' })
  const good = `${header}.${b64({ sub: 'a' })}.${SIG}`
  t.equal(refusal(good), undefined)
  t.same(decodeToken(good, 8192).header, { alg: 'HS256', typ: 'JWT', kid: 'k1' })
  t.equal(refusal(`${header}.${b64('{"sub":"a","sub":"b"}')}.${SIG}`), 'JOTGATE_TOKEN_MALFORMED/duplicate-key')
  t.equal(refusal(`${header}.${b64('[1]')}.${SIG}`), 'JOTGATE_TOKEN_MALFORMED/payload-not-object')
  t.equal(refusal(`${header}.${b64({ sub: 'a' })}.`), 'JOTGATE_TOKEN_SIGNATURE/signature-empty')
  t.equal(refusal(`${header}.${b64({ sub: 'a' })}.${SIG}=`), 'JOTGATE_TOKEN_MALFORMED/signature-encoding')
})

t.test('refused headers are refused again, and the same reason is given', async (t) => {
  for (const [value, expected] of [
    [{ alg: 'none' }, 'JOTGATE_TOKEN_ALGORITHM/alg-none'],
    [{ alg: 'HS256', crit: ['exp'] }, 'JOTGATE_TOKEN_MALFORMED/header-crit'],
    [{ alg: 'HS256', kid: 7 }, 'JOTGATE_TOKEN_MALFORMED/kid-type'],
    ['{"alg":"HS256","alg":"none"}', 'JOTGATE_TOKEN_MALFORMED/duplicate-key']
  ] as const) {
    const token = `${b64(value)}.${b64({ sub: 'a' })}.${SIG}`
    t.equal(refusal(token), expected, `first: ${JSON.stringify(value)}`)
    t.equal(refusal(token), expected, `again: ${JSON.stringify(value)}`)
  }
})

t.test('a kept header cannot be changed by whoever got it', async (t) => {
  const header = b64({ alg: 'HS256', kid: 'frozen' })
  const first = decodeToken(`${header}.${b64({ sub: 'a' })}.${SIG}`, 8192).header as Record<string, unknown>
  t.throws(() => { 'use strict'; first.alg = 'none' }, TypeError)
  t.equal(decodeToken(`${header}.${b64({ sub: 'b' })}.${SIG}`, 8192).header.alg, 'HS256')
})

t.test('more distinct headers than are kept: every one still decodes to its own values', async (t) => {
  const kids: unknown[] = []
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 200; i++) {
      kids.push(decodeToken(`${b64({ alg: 'ES256', kid: `key-${i}` })}.${b64({ sub: 'a' })}.${SIG}`, 8192).header.kid)
    }
  }
  t.same(kids, [...Array.from({ length: 200 }, (_, i) => `key-${i}`), ...Array.from({ length: 200 }, (_, i) => `key-${i}`)], '200 headers, twice, each its own kid')
})

/** The definition: exactly what encoding the decoded bytes gives back (and not empty). */
const roundTrips = (segment: string): boolean => segment.length > 0 && Buffer.from(segment, 'base64url').toString('base64url') === segment
const URL_ALPHABET = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_']

t.test('isCanonical agrees with decoding and encoding again, on every short string and on random long ones', async (t) => {
  // Every string of one and two characters over base64url, the standard
  // alphabet's + and /, padding, whitespace and a few others; every one of
  // three base64url characters (the trailing-bit cases of both lengths).
  const wide = [...URL_ALPHABET, '+', '/', '=', ' ', '\t', '.', '%', '\u00e9']
  let checked = 0
  let disagree: string[] = []
  const check = (s: string) => {
    checked++
    if (isCanonical(s) !== roundTrips(s)) disagree.push(JSON.stringify(s))
  }
  check('')
  for (const a of wide) {
    check(a)
    for (const b of wide) check(a + b)
  }
  for (const a of URL_ALPHABET) for (const b of URL_ALPHABET) for (const c of URL_ALPHABET) check(a + b + c)
  t.same(disagree.slice(0, 10), [], `${checked} short strings`)
  t.ok(checked > 260_000)
  // Longer ones: canonical encodings of random bytes, and the same with one
  // character changed to anything.
  disagree = []
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), fc.constantFrom(...wide), (bytes, at, ch) => {
    const good = Buffer.from(bytes).toString('base64url')
    check(good)
    if (good.length > 0) check(good.slice(0, at % good.length) + ch + good.slice(at % good.length + 1))
    check(good + ch)
    return true
  }), { numRuns: 2000, seed: 1 })
  t.same(disagree.slice(0, 10), [], 'random long strings')
  t.same(decodeCanonical('aGk'), Buffer.from('hi'), 'decodeCanonical gives the bytes')
  t.equal(decodeCanonical('aGl'), undefined, 'and nothing for a non-canonical segment')
})

t.test('the signature comes decoded as well', async (t) => {
  const bytes = Buffer.from([0, 1, 2, 250, 251, 252, 253])
  const decoded = decodeToken(`${b64({ alg: 'HS256' })}.${b64({ sub: 'x' })}.${bytes.toString('base64url')}`, 8192)
  t.same(decoded.signatureBytes, bytes)
  t.equal(decoded.signature, bytes.toString('base64url'))
})
