import t, { type Test } from 'tap'
import { createHeaderMapper, encodeClaimValue } from '../../../src/pipeline/map-claims.js'

const SAFE = /^[\x20-\x7e]*$/
const PREFIX = /^utf-8''/i

/** What a receiver does, per the documented rules. */
function decodeText (value: string): string {
  return PREFIX.test(value) ? decodeURIComponent(value.slice(7)) : value
}

function assertUnsafe (t: Test, fn: () => unknown, reason: string, name: string) {
  t.throws(fn, { code: 'JOTGATE_CLAIM_UNSAFE', statusCode: 400, reason }, name)
}

t.test('encodeClaimValue: values', async (t) => {
  const cases: Array<[string, unknown, string | undefined]> = [
    ['undefined', undefined, undefined],
    ['string', 'alice', 'alice'],
    ['empty string', '', ''],
    ['inner spaces', 'Alice Smith', 'Alice Smith'],
    ['string with comma is one value', 'a,b', 'a,b'],
    ['percent sign kept', '100%', '100%'],
    ['json-looking string kept', '{"a":1}', '{"a":1}'],
    ['integer', 42, '42'],
    ['negative float', -1.5, '-1.5'],
    ['zero', 0, '0'],
    ['true', true, 'true'],
    ['false', false, 'false'],
    ['null', null, 'null'],
    ['string array joined', ['admin', 'user'], 'admin,user'],
    ['one-element array', ['admin'], 'admin'],
    ['empty array', [], ''],
    ['array element with comma', ['a,b', 'c'], '["a,b","c"]'],
    ['array with empty element', ['a', ''], '["a",""]'],
    ['array element with edge space', ['a', ' b'], '["a"," b"]'],
    ['mixed array', ['a', 1, true, null], '["a",1,true,null]'],
    ['nested array', [['a']], '[["a"]]'],
    ['undefined in array is null, as in JSON', ['a', undefined], '["a",null]'],
    ['undefined member is left out, as in JSON', { a: undefined, b: 1 }, '{"b":1}'],
    ['object', { country: 'FR', zip: 75001 }, '{"country":"FR","zip":75001}'],
    ['object with quotes', { q: 'say "hi" \\o/' }, '{"q":"say \\"hi\\" \\\\o/"}'],
    ['object with non-ASCII', { name: 'Zoë', city: '東京' }, '{"name":"Zo\\u00eb","city":"\\u6771\\u4eac"}'],
    ['object with astral char', { e: '😀' }, '{"e":"\\ud83d\\ude00"}'],
    ['non-ASCII string', 'Zoë', "utf-8''Zo%C3%AB"],
    ['CJK string', '日本', "utf-8''%E6%97%A5%E6%9C%AC"],
    ['astral string', '😀', "utf-8''%F0%9F%98%80"],
    ['non-ASCII string escapes RFC 8187 non-attr-chars', "é'()* ", "utf-8''%C3%A9%27%28%29%2A%20"],
    ['leading space', ' x', "utf-8''%20x"],
    ['trailing space', 'x ', "utf-8''x%20"],
    ['prefix look-alike', "utf-8''%41", "utf-8''utf-8%27%27%2541"],
    ['prefix look-alike, upper case', "UTF-8''x", "utf-8''UTF-8%27%27x"],
    ['array with non-ASCII element', ['a', 'Zoë'], "utf-8''a%2CZo%C3%AB"],
    ['C1 control is non-ASCII, encoded', '\u0085', "utf-8''%C2%85"]
  ]
  for (const [name, value, expected] of cases) t.equal(encodeClaimValue(value), expected, name)
})

t.test('encodeClaimValue: decodes back', async (t) => {
  for (const s of ['Zoë', '日本', ' x ', "utf-8''%41", 'plain']) t.equal(decodeText(encodeClaimValue(s)!), s)
  t.strictSame(decodeText(encodeClaimValue(['a', 'Zoë'])!).split(','), ['a', 'Zoë'])
  const object = { a: ['x,y', 1, { b: 'Zoë 😀' }], c: null }
  t.strictSame(JSON.parse(encodeClaimValue(object)!), object)
})

t.test('encodeClaimValue: refusals', async (t) => {
  const cases: Array<[string, unknown, string]> = [
    ['CR', 'a\rb', 'control-char'],
    ['LF', 'a\nX-Admin: 1', 'control-char'],
    ['CRLF', 'a\r\nb', 'control-char'],
    ['NUL', 'a\u0000', 'control-char'],
    ['TAB', 'a\tb', 'control-char'],
    ['DEL', 'a\u007f', 'control-char'],
    ['control with non-ASCII', 'Zoë\n', 'control-char'],
    ['control in array element', ['a', 'b\n'], 'control-char'],
    ['control in array element with comma', ['a,', 'b\n'], 'control-char'],
    ['control in nested object string', { a: { b: ['x\r'] } }, 'control-char'],
    ['control in object key', { 'a\nb': 1 }, 'control-char'],
    ['lone high surrogate', 'a\ud800', 'lone-surrogate'],
    ['lone low surrogate', '\udc00a', 'lone-surrogate'],
    ['lone surrogate in object', { a: '\ud800' }, 'lone-surrogate'],
    ['NaN', NaN, 'not-json'],
    ['Infinity in object', { a: Infinity }, 'not-json'],
    ['bigint', 1n, 'not-json'],
    ['function', () => 1, 'not-json'],
    ['Date', new Date(0), 'not-json'],
    ['too deep', JSON.parse('['.repeat(100) + ']'.repeat(100)), 'too-deep']
  ]
  for (const [name, value, reason] of cases) assertUnsafe(t, () => encodeClaimValue(value), reason, name)

  const cycle: Record<string, unknown> = {}
  cycle.self = cycle
  assertUnsafe(t, () => encodeClaimValue(cycle), 'too-deep', 'cycle')
})

t.test('createHeaderMapper', async (t) => {
  const map = createHeaderMapper({
    'X-User-Id': 'sub',
    'X-User-Roles': 'roles',
    'X-Country': 'address.country',
    'X-Deep': 'a.b.c',
    'X-Missing': 'nope',
    'X-Missing-Nested': 'address.nope.deeper',
    'X-Through-String': 'sub.length',
    'X-Through-Array': 'roles.0',
    'X-Through-Null': 'nil.x',
    'X-Nil': 'nil',
    'X-Proto': '__proto__',
    'X-Proto-Nested': 'address.__proto__',
    'X-Constructor': 'constructor',
    'X-Constructor-Name': 'constructor.name',
    'X-Prototype': 'prototype',
    'X-To-String': 'toString',
    'X-Has-Own': 'address.hasOwnProperty'
  })
  const claims = { sub: 'alice', roles: ['admin', 'user'], address: { country: 'FR' }, a: { b: { c: 3 } }, nil: null }
  t.strictSame({ ...map(claims) }, {
    'x-user-id': 'alice',
    'x-user-roles': 'admin,user',
    'x-country': 'FR',
    'x-deep': '3',
    'x-nil': 'null'
  })
  t.strictSame({ ...map({}) }, {}, 'absent claims give no header')
  t.strictSame({ ...map({ roles: 'admin' }) }, { 'x-user-roles': 'admin' }, 'a string roles is one role')
  t.strictSame({ ...map({ address: 'FR' }) }, {}, 'a path through a string gives nothing')
})

t.test('createHeaderMapper: prototype names never resolve, even as own properties', async (t) => {
  const map = createHeaderMapper({ 'X-Proto': '__proto__', 'X-Constructor': 'constructor', 'X-Nested': 'o.constructor' })
  const claims = JSON.parse('{"__proto__": "p", "constructor": "c", "o": {"constructor": "n"}}') as Record<string, unknown>
  t.strictSame({ ...map(claims) }, {})
})

t.test('createHeaderMapper: later names win, case-insensitively', async (t) => {
  const map = createHeaderMapper({ 'X-User-Id': 'sub', 'x-user-id': 'email' })
  t.strictSame({ ...map({ sub: 'alice', email: 'a@example.test' }) }, { 'x-user-id': 'a@example.test' })
})

t.test('createHeaderMapper: an unsafe claim refuses the request', async (t) => {
  const map = createHeaderMapper({ 'X-User-Id': 'sub' })
  assertUnsafe(t, () => map({ sub: 'alice\r\nX-Admin: true' }), 'control-char', 'header injection')
  t.strictSame({ ...map({ sub: 'Zoë' }) }, { 'x-user-id': "utf-8''Zo%C3%AB" })
})

// Small xorshift PRNG with a fixed seed, so a failure reproduces.
function random (seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s ^= s << 13; s >>>= 0
    s ^= s >>> 17
    s ^= s << 5; s >>>= 0
    return s / 0x100000000
  }
}

const ALPHABET = ['a', 'Z', '0', ' ', ',', '"', '\\', "'", '%', '*', '\r', '\n', '\u0000', '\t', '\u007f', '\u001b',
  'é', 'ë', '日', '😀', '\ud800', '\udc00', '\u0085', '\u2028', '\ufeff', "utf-8''"]

t.test('randomized: a coded refusal or safe, decodable output', async (t) => {
  const next = random(0x5eed)
  const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!
  const str = (): string => Array.from({ length: Math.floor(next() * 6) }, () => pick(ALPHABET)).join('')
  const value = (depth: number): unknown => {
    const kind = Math.floor(next() * (depth > 2 ? 5 : 8))
    switch (kind) {
      case 0: case 1: return str()
      case 2: return Math.floor(next() * 2000) - 1000 + (next() < 0.3 ? 0.25 : 0)
      case 3: return next() < 0.5
      case 4: return null
      case 5: return Array.from({ length: Math.floor(next() * 4) }, () => str())
      case 6: return Array.from({ length: Math.floor(next() * 4) }, () => value(depth + 1))
      default: return Object.fromEntries(Array.from({ length: Math.floor(next() * 4) }, () => [str(), value(depth + 1)]))
    }
  }

  let refused = 0
  let encoded = 0
  for (let i = 0; i < 5000; i++) {
    const input = value(0)
    let output: string | undefined
    try {
      output = encodeClaimValue(input)
    } catch (err) {
      const e = err as { code?: string, statusCode?: number }
      if (e.code !== 'JOTGATE_CLAIM_UNSAFE' || e.statusCode !== 400) t.fail(`uncoded error for ${JSON.stringify(input)}: ${String(err)}`)
      refused++
      continue
    }
    encoded++
    if (typeof output !== 'string' || !SAFE.test(output)) {
      t.fail(`unsafe output for ${JSON.stringify(input)}: ${JSON.stringify(output)}`)
      continue
    }
    const back = typeof input === 'string'
      ? decodeText(output)
      : Array.isArray(input) && input.length === 0 ? []
        : Array.isArray(input) && !PREFIX.test(output) && !output.startsWith('[') ? output.split(',')
          : Array.isArray(input) && PREFIX.test(output) ? decodeText(output).split(',')
            : JSON.parse(output)
    if (JSON.stringify(back) !== JSON.stringify(input)) t.fail(`no round trip for ${JSON.stringify(input)}: ${output}`)
  }
  t.ok(refused > 100, `some refused (${refused})`)
  t.ok(encoded > 1000, `most encoded (${encoded})`)
})
