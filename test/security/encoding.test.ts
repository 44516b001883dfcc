/**
 * Attack family: encoding (CONTRACT section 3 step 4). Each segment must be
 * canonical base64url (no padding, whitespace, `+` or `/`) of valid UTF-8
 * JSON holding an object, with one member per name; tokens longer than
 * maxTokenBytes are refused before parsing; deep nesting can neither crash
 * nor stall the decoder. A lenient decoder gives one token many spellings
 * (defeating anything keyed by the token text) and lets two parsers read
 * different claims.
 */
import t from 'tap'
import { startUpstream } from '../helpers/upstream.js'
import { startGateway } from '../helpers/gateway.js'
import { AUDIENCE, ISSUER, KEYS, b64, b64Bytes, claims, keyConfigs, mint, mintRaw, signInput, zoo, type ZooKey } from '../helpers/zoo.js'
import { decodeToken, hasDuplicateName } from '../../src/pipeline/decode-token.js'
import { accepted, call, refuseAll, refused, refusedRaw, toStandardB64, zooCases, type TokenCase } from './kit.js'

const up = await startUpstream()
const gw = await startGateway({ name: 'sec-encoding', config: { routes: [{ path: '/', upstream: up.url }] } })
t.teardown(async () => { await gw.close(); await up.close() })

const HEADER = JSON.stringify({ alg: 'ES256', typ: 'JWT', kid: 'es256' })
const canonical = 'RFC 7515 section 2 (base64url without padding); RFC 4648 section 5'
/** Inserts `text` into segment `index` of `token`, after its first character. */
const insert = (token: string, index: number, text: string): string => {
  const parts = token.split('.')
  parts[index] = parts[index]!.slice(0, 1) + text + parts[index]!.slice(1)
  return parts.join('.')
}

t.test('the zoo: padded, garbage, two segments', async (t) => {
  const z = zoo()
  await refuseAll(t, gw, up, zooCases(z, 'encoding'))
  await accepted(t, gw, up, z.good, 'alice', 'zoo good (positive control)')
})

t.test('non-base64url characters, padding and segment counts', async (t) => {
  const good = mint()
  const cases: TokenCase[] = []
  for (const [index, part] of [[0, 'header'], [1, 'payload'], [2, 'signature']] as const) {
    for (const ch of ['+', '/', '~', '*', '%', '!', '$', ':', '\u00e9']) {
      cases.push({ name: `${part}: ${JSON.stringify(ch)} inside`, src: canonical, token: insert(good, index, ch), code: 'JOTGATE_TOKEN_MALFORMED' })
    }
    // A comma reads as a list of credentials (RFC 9110 section 5.3): ambiguous.
    cases.push({ name: `${part}: "," inside`, src: 'RFC 9110 section 5.3; RFC 7235 section 4.2', token: insert(good, index, ','), code: 'JOTGATE_TOKEN_AMBIGUOUS' })
    const seg = good.split('.')[index]!
    const pad = '='.repeat((4 - seg.length % 4) % 4 || 1)
    cases.push({ name: `${part}: padded with ${pad}`, src: canonical, token: good.split('.').map((s, i) => i === index ? s + pad : s).join('.'), code: 'JOTGATE_TOKEN_MALFORMED' })
  }
  cases.push(
    { name: 'payload in the standard alphabet', src: canonical, token: toStandardB64(mint({ payload: claims({ pad: '???>>>~~~' }) }), 1), code: 'JOTGATE_TOKEN_MALFORMED' },
    // Formerly in test/integration/token-zoo.test.ts.
    { name: 'header with + in base64', src: canonical, token: toStandardB64(mint({ header: { pad: '???>>>~~~' } }), 0), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'a fourth segment', src: 'RFC 7515 section 7.1 (three segments)', token: `${good}.${good.split('.')[2]!}`, code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'a trailing dot', src: 'RFC 7515 section 7.1', token: `${good}.`, code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'a leading dot', src: 'RFC 7515 section 7.1', token: `.${good}`, code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'dots only', src: 'RFC 7515 section 7.1', token: '..', code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'empty header segment', src: 'RFC 7515 section 7.1', token: `.${good.split('.').slice(1).join('.')}`, code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'empty payload segment', src: 'RFC 7515 appendix F (no detached payloads)', token: good.split('.').map((s, i) => i === 1 ? '' : s).join('.'), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'one character header (length 1 mod 4)', src: 'RFC 4648 section 5', token: `e.${good.split('.').slice(1).join('.')}`, code: 'JOTGATE_TOKEN_MALFORMED' }
  )
  await refuseAll(t, gw, up, cases)
  await accepted(t, gw, up, good, 'alice', 'the unaltered token (positive control)')
})

t.test('whitespace inside and around the token', async (t) => {
  const good = mint()
  await refuseAll(t, gw, up, [
    { name: 'a space inside the payload', src: canonical, token: insert(good, 1, ' '), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'a tab inside the signature', src: canonical, token: insert(good, 2, '\t'), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'a space before a dot', src: canonical, token: good.replace('.', ' .'), code: 'JOTGATE_TOKEN_MALFORMED' }
  ])
  // Bytes fetch() refuses to send: over a raw socket. The HTTP parser refuses them.
  const raw = 'RFC 9110 section 5.5 (CR, LF, NUL never in a field value); RFC 9112 section 5.2 (obs-fold)'
  for (const [label, value] of [
    ['NUL inside the token', `Bearer ${good.slice(0, 30)}\u0000${good.slice(30)}`],
    ['bare CR inside the token', `Bearer ${good.slice(0, 30)}\r${good.slice(30)}`],
    ['a MIME line break (obs-fold) inside the token', `Bearer ${good.slice(0, 30)}\r\n ${good.slice(30)}`]
  ] as const) {
    await refusedRaw(t, gw, up, '/x', [['Authorization', value]], 400, 'JOTGATE_BAD_REQUEST', `${label} [${raw}]`)
  }
  // JSON whitespace inside a segment is JSON (RFC 8259 section 2): the issuer signed those bytes.
  await accepted(t, gw, up, mintRaw(' { "alg" : "ES256" , "kid" : "es256" } ', `\n${JSON.stringify(claims(), null, 2)}\n`), 'alice', 'JSON whitespace inside the decoded segments')
  const res = await call(gw, ` ${good} `)
  t.equal(res.status, 200, 'spaces around the token (RFC 7235 section 2.1 allows them)')
})

t.test('invalid UTF-8, byte order marks and other encodings of JSON', async (t) => {
  const json = JSON.stringify(claims())
  const utf8 = 'RFC 8725 section 3.7 (UTF-8); RFC 3629 section 3 (invalid sequences)'
  const inString = (bytes: number[]): Buffer => Buffer.concat([Buffer.from(`${json.slice(0, -1)},"note":"`), Buffer.from(bytes), Buffer.from('"}')])
  const invalid: Array<[string, number[]]> = [
    ['0xFF', [0xff]], ['an overlong dot (C0 AE)', [0xc0, 0xae]], ['a UTF-16 surrogate (ED A0 80)', [0xed, 0xa0, 0x80]],
    ['above U+10FFFF (F4 90 80 80)', [0xf4, 0x90, 0x80, 0x80]], ['a truncated sequence (E2 82)', [0xe2, 0x82]], ['a lone continuation byte', [0x80]]
  ]
  const cases: TokenCase[] = []
  for (const [label, bytes] of invalid) {
    cases.push({ name: `payload string holding ${label}`, src: utf8, token: mintRaw(HEADER, inString(bytes)), code: 'JOTGATE_TOKEN_MALFORMED' })
    cases.push({ name: `header string holding ${label}`, src: utf8, token: mintRaw(Buffer.concat([Buffer.from('{"alg":"ES256","kid":"es256","x":"'), Buffer.from(bytes), Buffer.from('"}')]), json), code: 'JOTGATE_TOKEN_MALFORMED' })
  }
  cases.push(
    { name: 'payload with a UTF-8 byte order mark', src: 'RFC 8259 section 8.1 (no BOM); RFC 8725 section 3.7', token: mintRaw(HEADER, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(json)])), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'header with a UTF-8 byte order mark', src: 'RFC 8259 section 8.1', token: mintRaw(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(HEADER)]), json), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'payload in UTF-16LE', src: 'RFC 8725 section 2.6 (multiplicity of JSON encodings)', token: mintRaw(HEADER, Buffer.from(json, 'utf16le')), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'payload in UTF-16BE with a BOM', src: 'RFC 8725 section 2.6', token: mintRaw(HEADER, Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(json, 'utf16le').swap16()])), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'payload in latin1 (é as E9)', src: 'RFC 8725 section 3.7', token: mintRaw(HEADER, Buffer.from(JSON.stringify(claims({ name: 'Zo\u00eb' })), 'latin1')), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'a raw NUL inside a JSON string', src: 'RFC 8259 section 7 (control characters escaped)', token: mintRaw(HEADER, inString([0x00])), code: 'JOTGATE_TOKEN_MALFORMED' }
  )
  await refuseAll(t, gw, up, cases)
  const seen = await accepted(t, gw, up, mintRaw(HEADER, Buffer.from(JSON.stringify(claims({ sub: 'Zo\u00eb' })), 'utf8')), "utf-8''Zo%C3%AB", 'valid UTF-8 non-ASCII claims (positive control)')
  t.equal(decodeURIComponent(String(seen.headers['x-user-id']).slice(7)), 'Zo\u00eb', 'the documented encoding decodes back')
})

t.test('payloads and headers that are JSON but not objects, or not JSON', async (t) => {
  const json = JSON.stringify(claims())
  const notObject = 'RFC 7519 section 7.2 step 10 (a JSON object); RFC 7515 section 5.2 step 4'
  const notJson = 'RFC 8259 section 2 (strict JSON, not JSON5 or JavaScript)'
  const cases: TokenCase[] = [
    ['an array', '[1,2]'], ['a string', '"alice"'], ['a number', '42'], ['true', 'true'], ['null', 'null'], ['an array holding the claims', `[${json}]`]
  ].map(([label, text]) => ({ name: `payload ${label}`, src: notObject, token: mintRaw(HEADER, text!), code: 'JOTGATE_TOKEN_MALFORMED' }))
  for (const [label, text] of [['an array', '[{"alg":"ES256"}]'], ['a string', '"ES256"'], ['null', 'null']]) {
    cases.push({ name: `header ${label}`, src: notObject, token: mintRaw(text!, json), code: 'JOTGATE_TOKEN_MALFORMED' })
  }
  for (const [label, text] of [
    ['trailing garbage', `${json}x`], ['two objects', `${json}{}`], ['single quotes', json.replace(/"/g, "'")],
    ['a trailing comma', `${json.slice(0, -1)},}`], ['a comment', `/* */${json}`], ['NaN', `${json.slice(0, -1)},"n":NaN}`],
    ['a hex number', `${json.slice(0, -1)},"n":0x10}`], ['an unquoted name', `${json.slice(0, -1)},n:1}`], ['truncated', json.slice(0, -1)]
  ]) {
    cases.push({ name: `payload with ${label}`, src: notJson, token: mintRaw(HEADER, text!), code: 'JOTGATE_TOKEN_MALFORMED' })
  }
  // Formerly in test/integration/token-zoo.test.ts.
  cases.push({ name: 'payload a JSON array', src: notObject, token: signed({ alg: 'ES256', kid: 'es256' }, [1, 2]), code: 'JOTGATE_TOKEN_MALFORMED' })
  await refuseAll(t, gw, up, cases)
  // An empty object is an object: it then fails on its missing claims.
  await refused(t, gw, up, mintRaw(HEADER, '{}'), 'JOTGATE_TOKEN_ISSUER', 'payload {} [RFC 8725 section 3.8]')
})

/** The length of the unpadded base64url of `bytes` bytes. */
const b64Length = (bytes: number): number => Math.ceil(bytes * 4 / 3)

/**
 * A valid token of exactly `length` characters: the payload carries a `pad`
 * claim, the header a `x` parameter, sized so the three segments add up.
 */
function tokenOfLength (length: number, key: ZooKey = KEYS.es256!, payload: Record<string, unknown> = claims()): string {
  const sigLength = mint({ key }).split('.')[2]!.length
  for (let h = 0; h < 3; h++) {
    const header = h === 0 ? {} : { x: 'h'.repeat(h) }
    const headerLength = b64Length(Buffer.byteLength(JSON.stringify({ alg: key.alg, typ: 'JWT', kid: key.kid, ...header })))
    const base = Buffer.byteLength(JSON.stringify({ ...payload, pad: '' }))
    const p = Math.max(0, Math.floor((length - headerLength - sigLength - 2) * 3 / 4) - base - 2)
    for (let pad = p; pad < p + 4; pad++) {
      if (headerLength + 1 + b64Length(base + pad) + 1 + sigLength === length) {
        const token = mint({ key, header, payload: { ...payload, pad: 'x'.repeat(pad) } })
        if (token.length !== length) throw new Error(`tokenOfLength: ${token.length} !== ${length}`)
        return token
      }
    }
  }
  throw new Error(`no token of length ${length}`)
}

t.test('tokens at and over maxTokenBytes', async (t) => {
  const src = 'CONTRACT section 2 (maxTokenBytes: refused before parsing); CWE-400'
  // The default gateway: 8192.
  await accepted(t, gw, up, tokenOfLength(8192), 'alice', 'exactly 8192 bytes (the default maximum)')
  await refused(t, gw, up, tokenOfLength(8193), 'JOTGATE_TOKEN_MALFORMED', `8193 bytes [${src}]`)
  await refused(t, gw, up, tokenOfLength(8192) + 'A', 'JOTGATE_TOKEN_MALFORMED', `8192 bytes and one more character [${src}]`)
  // Formerly in test/integration/token-zoo.test.ts: over 512 bytes is fine by default.
  await accepted(t, gw, up, mint({ key: KEYS.hs256!, payload: claims({ pad: 'x'.repeat(600) }) }), 'alice', 'over 512 bytes, under 8192')

  const up2 = await startUpstream()
  const small = await startGateway({
    name: 'sec-encoding-512',
    config: { tokens: { issuer: ISSUER, audience: [AUDIENCE], keys: keyConfigs(), maxTokenBytes: 512 }, routes: [{ path: '/', upstream: up2.url }] }
  })
  t.teardown(async () => { await small.close(); await up2.close() })
  await accepted(t, small, up2, tokenOfLength(512), 'alice', 'exactly 512 bytes with maxTokenBytes 512')
  await refused(t, small, up2, tokenOfLength(513), 'JOTGATE_TOKEN_MALFORMED', `513 bytes with maxTokenBytes 512 [${src}]`)
  // Longer than maxTokenBytes: refused before parsing, however valid.
  const big = mint({ key: KEYS.hs256!, payload: claims({ pad: 'x'.repeat(600) }) })
  t.ok(big.length > 512, 'the token is over 512 bytes')
  await refused(t, small, up2, big, 'JOTGATE_TOKEN_MALFORMED', `over maxTokenBytes [${src}]`)
  // Refused before parsing: garbage of the same length gets the same answer.
  await refused(t, small, up2, 'x'.repeat(513), 'JOTGATE_TOKEN_MALFORMED', `garbage over maxTokenBytes [${src}]`)
})

t.test('deep nesting neither crashes nor stalls', async (t) => {
  const up3 = await startUpstream()
  const deep = await startGateway({
    name: 'sec-encoding-deep',
    config: {
      server: { host: '127.0.0.1', port: 0, maxHeaderBytes: 1048576 },
      tokens: { issuer: ISSUER, audience: [AUDIENCE], keys: keyConfigs(), maxTokenBytes: 65536 },
      routes: [{ path: '/mapped', upstream: up3.url, headers: { 'X-Deep': 'deep' } }, { path: '/', upstream: up3.url }]
    }
  })
  t.teardown(async () => { await deep.close(); await up3.close() })
  const src = 'CWE-674 (uncontrolled recursion); RFC 8259 section 9 (parsers may limit depth)'
  const json = JSON.stringify(claims({ sub: 'deep' }))
  const timed = async (label: string, fn: () => Promise<void>): Promise<void> => {
    const started = Date.now()
    await fn()
    t.ok(Date.now() - started < 3000, `${label}: answered within 3 s (${Date.now() - started} ms)`)
  }
  // 65536 base64url characters hold 49152 bytes: as deep as the gateway can receive.
  await timed('48000 unclosed [', () => refused(t, deep, up3, mintRaw(HEADER, '['.repeat(48000)), 'JOTGATE_TOKEN_MALFORMED', `48000 unclosed [ [${src}]`))
  await timed('24000 [ closed', () => refused(t, deep, up3, mintRaw(HEADER, '['.repeat(24000) + ']'.repeat(24000)), 'JOTGATE_TOKEN_MALFORMED', `24000 nested arrays, not an object [${src}]`))
  const nestedArrays = `${json.slice(0, -1)},"deep":${'['.repeat(20000)}${']'.repeat(20000)}}`
  const nestedObjects = `${json.slice(0, -1)},"deep":${'{"a":'.repeat(8000)}1${'}'.repeat(8000)}}`
  await timed('20000 nested arrays in a claim', async () => { await accepted(t, deep, up3, mintRaw(HEADER, nestedArrays), 'deep', 'a claim 20000 arrays deep, not mapped') })
  await timed('8000 nested objects in a claim', async () => { await accepted(t, deep, up3, mintRaw(HEADER, nestedObjects), 'deep', 'a claim 8000 objects deep, not mapped') })
  await timed('nesting in the header', async () => { await accepted(t, deep, up3, mintRaw(`{"alg":"ES256","kid":"es256","x":${'['.repeat(20000)}${']'.repeat(20000)}}`, json), 'deep', 'a header parameter 20000 arrays deep') })
  // Mapped to a header, the deep claim is refused by the encoder's depth limit (64), never a 500.
  for (const [label, payload] of [['arrays', nestedArrays], ['objects', nestedObjects]] as const) {
    const before = up3.seen.length
    const res = await call(deep, mintRaw(HEADER, payload), '/mapped/x')
    t.equal(res.status, 400, `deep ${label} mapped to X-Deep: 400`)
    t.equal(res.body?.code, 'JOTGATE_CLAIM_UNSAFE', `deep ${label} mapped to X-Deep: JOTGATE_CLAIM_UNSAFE [${src}]`)
    t.equal(up3.seen.length, before, `deep ${label} mapped: upstream saw nothing`)
  }
  await accepted(t, deep, up3, mint({ payload: claims({ sub: 'deep', deep: [[1]] }) }), 'deep', 'shallow claim on the mapped route (positive control)', '/mapped/x')
  t.equal(up3.seen.at(-1)?.headers['x-deep'], '[[1]]', 'a shallow claim is mapped')
})

t.test('the decoder alone: 100k-deep input, beyond what any gateway accepts', async (t) => {
  // maxTokenBytes is capped at 64 KiB by the config schema; the decoder
  // itself must still be linear and stack-safe at any size.
  const src = 'CWE-674; V8 JSON.parse is iterative'
  const sig = signInput('HS256', Buffer.alloc(32), 'x')
  const cases: Array<[string, string]> = [
    ['100k unclosed [', '['.repeat(100000)],
    ['100k [ closed', '['.repeat(100000) + ']'.repeat(100000)],
    ['100k nested objects in a claim', `{"a":${'{"a":'.repeat(100000)}1${'}'.repeat(100000)}}`]
  ]
  for (const [label, payload] of cases) {
    const token = `${b64Bytes(HEADER)}.${b64Bytes(payload)}.${sig}`
    const started = Date.now()
    let code: unknown
    try { decodeToken(token, 1 << 30) } catch (err) { code = (err as { code?: string }).code }
    const ms = Date.now() - started
    t.ok(code === undefined || code === 'JOTGATE_TOKEN_MALFORMED', `${label}: decoded or refused as malformed, nothing else [${src}]`)
    t.ok(ms < 2000, `${label}: ${ms} ms`)
  }
  const started = Date.now()
  t.equal(hasDuplicateName(`{"a":${'{"a":'.repeat(100000)}1${'}'.repeat(100000)}}`), false, 'the duplicate-name scan of 100k nested objects')
  t.equal(hasDuplicateName(`{${Array.from({ length: 50000 }, (_, i) => `"k${i}":${i}`).join(',')},"k7":0}`), true, 'a duplicate among 50k members')
  t.ok(Date.now() - started < 2000, `duplicate-name scans are linear (${Date.now() - started} ms)`)
})

/** A token whose payload is any JSON value (mint() takes objects only). */
function signed (header: Record<string, unknown>, payload: unknown): string {
  const input = `${b64(header)}.${b64(payload)}`
  return `${input}.${signInput('ES256', KEYS.es256!.signKey, input)}`
}
