import t from 'tap'
import fc from 'fast-check'
import { createHmac, createSecretKey } from 'node:crypto'
import { hmacVerifier, type HmacAlgorithm } from '../../../src/keys/hmac.js'

// hmac.ts builds HMAC from node's one-shot hash with the key's padded
// blocks made once; node's createHmac is the reference it must agree with.

const ALGS: HmacAlgorithm[] = ['HS256', 'HS384', 'HS512']
const reference = (alg: HmacAlgorithm, key: Uint8Array, input: string) => createHmac(`sha${alg.slice(2)}`, key).update(input).digest()

t.test('the MAC createHmac makes verifies, for keys shorter than, as long as and longer than the block', async (t) => {
  for (const alg of ALGS) {
    // 64-byte blocks for SHA-256, 128 for SHA-384/512: keys around both.
    for (const length of [1, 32, 63, 64, 65, 127, 128, 129, 300]) {
      const key = Buffer.alloc(length, length % 251)
      const check = hmacVerifier(alg, createSecretKey(key))
      const input = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9'
      t.equal(check(input, reference(alg, key, input)), true, `${alg}, ${length}-byte key`)
      t.equal(check(`${input}x`, reference(alg, key, input)), false, `${alg}, ${length}-byte key: other input`)
    }
  }
})

t.test('any key and input: true for the reference MAC, false for any other bytes', async (t) => {
  let runs = 0
  fc.assert(fc.property(
    fc.constantFrom(...ALGS),
    fc.uint8Array({ minLength: 1, maxLength: 300 }),
    fc.string({ maxLength: 400, unit: 'binary' }),
    fc.nat(),
    (alg, key, input, at) => {
      runs++
      const check = hmacVerifier(alg, createSecretKey(key))
      const mac = reference(alg, key, input)
      if (!check(input, mac)) return false
      const flipped = Buffer.from(mac)
      flipped[at % flipped.length]! ^= 1 << (at % 8)
      return !check(input, flipped) && !check(input, mac.subarray(0, mac.length - 1)) &&
        !check(input, Buffer.concat([mac, Buffer.alloc(1)])) && !check(input, Buffer.alloc(0))
    }
  ), { numRuns: 500 })
  t.equal(runs, 500, 'every generated case checked')
})

t.test('another key\'s MAC and another algorithm\'s MAC are refused', async (t) => {
  const key = Buffer.alloc(32, 7)
  const input = 'a.b'
  const check = hmacVerifier('HS256', createSecretKey(key))
  t.equal(check(input, reference('HS256', Buffer.alloc(32, 8), input)), false, 'another key')
  t.equal(check(input, reference('HS512', key, input).subarray(0, 32)), false, 'HS512 cut to 32 bytes')
  t.equal(check(input, reference('HS256', key, input)), true, 'control')
})

t.test('one checker over inputs of any length in any order: each answer is its own input\'s', async (t) => {
  // The checker reuses its blocks between calls and grows them for a long
  // input: a short input after a long one must not hash the long one's tail.
  let runs = 0
  fc.assert(fc.property(
    fc.constantFrom(...ALGS),
    fc.array(fc.string({ maxLength: 3000, unit: 'binary' }), { minLength: 2, maxLength: 8 }),
    (alg, inputs) => {
      runs++
      const key = Buffer.alloc(32, 3)
      const check = hmacVerifier(alg, createSecretKey(key))
      return inputs.every((input, i) => check(input, reference(alg, key, input)) &&
        (i === 0 || inputs[i - 1] === input || !check(input, reference(alg, key, inputs[i - 1]!))))
    }
  ), { numRuns: 200 })
  t.equal(runs, 200, 'every generated sequence checked')
  const check = hmacVerifier('HS256', createSecretKey(Buffer.alloc(32, 3)))
  const long = 'x'.repeat(5000)
  t.equal(check(long, reference('HS256', Buffer.alloc(32, 3), long)), true, 'an input longer than the checker\'s first buffer holds')
  t.equal(check('x', reference('HS256', Buffer.alloc(32, 3), 'x')), true, 'then a one-character input')
  t.equal(check('x', reference('HS256', Buffer.alloc(32, 3), long)), false, 'which the long input\'s MAC does not verify')
})
