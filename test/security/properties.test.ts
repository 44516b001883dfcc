/**
 * Property-based tests (fast-check) of the three front ends an attacker
 * writes to directly: the path normalizer, the token decoder and verifier,
 * and the claim-header mapper; plus one property over real sockets: the
 * path the route table matched is the path the upstream saw.
 *
 * CI runs a fixed seed and FC_RUNS (default 200) cases per property. For a
 * longer local run, pick a seed and raise the count (no tap timeout):
 *
 *   FC_RUNS=100000 FC_SEED=$RANDOM npx tap --timeout=0 test/security/properties.test.ts
 *
 * A failure prints fast-check's seed and path; replay it exactly with
 * FC_SEED=<seed> FC_PATH=<path>.
 */
import t from 'tap'
import fc from 'fast-check'
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto'
import { validateHeaderValue } from 'node:http'
import { isGatewayError, type ErrorCode } from '../../src/errors.js'
import { normalizeTarget } from '../../src/pipeline/normalize-path.js'
import { decodeToken, hasDuplicateName } from '../../src/pipeline/decode-token.js'
import { createTokenVerifier } from '../../src/pipeline/verify-token.js'
import { createHeaderMapper } from '../../src/pipeline/map-claims.js'
import { createStaticIssuer, createVerifyKey, type KeyTable } from '../../src/keys/key-table.js'
import { startUpstream } from '../helpers/upstream.js'
import { startGateway } from '../helpers/gateway.js'
import { AUDIENCE, ISSUER, KEYS, b64Bytes, claims, mint, mintRaw, now, rawRequest, rawText } from '../helpers/zoo.js'

const RUNS = Number(process.env.FC_RUNS ?? 200)
const SEED = Number(process.env.FC_SEED ?? 0x6a6f74)
const PATH = process.env.FC_PATH
/** fast-check parameters: the fixed seed, the run count, and a replay path when given. */
const params = (numRuns = RUNS): fc.Parameters<unknown> => ({ seed: SEED, numRuns, ...(PATH === undefined ? {} : { path: PATH }) })
t.comment(`fast-check seed ${SEED}, ${RUNS} runs per property`)

/** Runs `fn` and returns the coded error it threw (undefined when none); anything else fails the property. */
function codeOf (fn: () => unknown, allowed: ReadonlySet<string>): ErrorCode | undefined {
  try {
    fn()
    return undefined
  } catch (err) {
    if (!isGatewayError(err) || !allowed.has(err.code)) throw new Error(`not a coded refusal: ${String((err as Error)?.stack ?? err)}`)
    return err.code
  }
}

// ---------------------------------------------------------------------------
// The path normalizer.

/** Pieces that stress step 1: dots, escapes of every kind, separators, controls. */
const PATH_PIECES = [
  'a', 'B', 'admin', 'public', '.', '..', '...', '%2e', '%2E', '%2e%2e', '.%2e', '%2e.', '%2f', '%2F', '%5c', '%5C', '\\',
  '%00', '%0a', '%1f', '%7f', '%41', '%61', '%7e', '%7E', '%2d', '%25', '%252e', '%252f', '%c3%a9', '%C3%A9', '%C3', '%ff', '%c0%ae',
  ';', '..;', ';x=1', '', '%20', ' ', '\t', '~', '-', '_', '"', '<', '>', '`', '{', '}', '^', '|', '[', ']', ':', '@', '!', '$',
  '&', "'", '(', ')', '*', '+', ',', '=', '%3b', '%3B', '%3F', '%23', '%zz', '%', '%2', '\u00e9', '\u0000', '\u007f', '#', '?'
]
/** Pieces step 1 accepts: paths built of them are mostly forwarded, often under /admin. */
const ACCEPTED_PIECES = ['a', 'admin', 'public', '.', '..', '%2e', '%2E', '.%2e', '%41', '%61', '%7e', '%25', '%252e', '%c3%a9', ';', ';x=1',
  '', '~', '"', '{', '}', '^', '|', '[', ':', '@', '!', "'", '*', '+', ',', '=', '%3b', '%3F', '%23', '%20']
const pieces = (from: string[]) => fc.array(fc.constantFrom(...from), { maxLength: 4 }).map((p) => p.join(''))
const QUERIES = ['', '?', '?a=1', '?next=/public/../admin', '?%2e%2e=%2f', '?x="<>`{}^|\'', '?q=100%', '??']
const SCHEMES = ['', '', '', 'http://h', 'HTTPS://evil.test:8443', 'http://u@h']
/** Request targets: origin or absolute form, pieces joined by `/`, an optional query. */
const target = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...SCHEMES), fc.array(pieces(PATH_PIECES), { maxLength: 8 }), fc.boolean(), fc.constantFrom(...QUERIES)).map(([scheme, segments, slash, query]) => `${scheme}/${segments.join('/')}${slash ? '/' : ''}${query}`) },
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...SCHEMES), fc.constantFrom('/admin', '/adm%69n', '/public', '', '/x/..'), fc.array(pieces(ACCEPTED_PIECES), { maxLength: 6 }), fc.boolean(), fc.constantFrom(...QUERIES)).map(([scheme, head, segments, slash, query]) => `${scheme}${head}/${segments.join('/')}${slash ? '/' : ''}${query}`) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 40 }).map((s) => `/${s}`) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) }
)
const BAD_PATH = new Set(['JOTGATE_BAD_PATH'])
const UNRESERVED_ESCAPE = /%(?:[46][1-9A-F]|[57][0-9A]|3[0-9]|2D|2E|5F|7E)/i

t.test('path normalizer: refuses with a code or returns one canonical path under the root', async (t) => {
  fc.assert(fc.property(target, (raw) => {
    let result: ReturnType<typeof normalizeTarget> | undefined
    codeOf(() => { result = normalizeTarget(raw) }, BAD_PATH)
    if (result === undefined) return
    const { path, query } = result
    // Nothing above the root: no dot segments, no empty segments, from `/`.
    if (!path.startsWith('/')) throw new Error(`not rooted: ${path}`)
    if (path.includes('//')) throw new Error(`empty segment: ${path}`)
    for (const s of path.split('/').slice(1)) {
      if (s === '.' || s === '..') throw new Error(`dot segment: ${path}`)
      // Decoded once more (a double-decoding upstream), still no way up or sideways.
      const once = decodeURIComponent(s)
      if (once === '.' || once === '..' || once.includes('/') || once.includes('\\')) throw new Error(`segment ${s} decodes to ${once}`)
    }
    // Canonical: no escape of an unreserved character, upper-case hex, nothing raw a client would encode.
    if (UNRESERVED_ESCAPE.test(path) || /%[0-9A-F]?[a-f]/.test(path)) throw new Error(`not canonical: ${path}`)
    if (/[\x00-\x20\x7f-\uffff\\"<>`{}^#?]/.test(path)) throw new Error(`raw character left: ${JSON.stringify(path)}`)
    // What a WHATWG URL parser (undici, the upstream's framework) reads is this very path.
    if (new URL(path, 'http://h').pathname !== path) throw new Error(`WHATWG reads ${new URL(path, 'http://h').pathname} for ${path}`)
    // Idempotent, and the query is the one that came.
    const again = normalizeTarget(path + query)
    if (again.path !== path || again.query !== query) throw new Error(`not idempotent: ${path}${query} -> ${again.path}${again.query}`)
    if (!raw.endsWith(query)) throw new Error(`query changed: ${raw} -> ${query}`)
  }), params())
  t.pass(`${RUNS} targets`)
})

// ---------------------------------------------------------------------------
// The token front end: decoder and verifier over an in-memory key table.

const NOW = now()
const TOKEN_CODES = new Set(['JOTGATE_TOKEN_MALFORMED', 'JOTGATE_TOKEN_SIGNATURE', 'JOTGATE_TOKEN_ALGORITHM', 'JOTGATE_TOKEN_KEY_UNKNOWN',
  'JOTGATE_TOKEN_EXPIRED', 'JOTGATE_TOKEN_NOT_YET_VALID', 'JOTGATE_TOKEN_LIFETIME', 'JOTGATE_TOKEN_ISSUER', 'JOTGATE_TOKEN_AUDIENCE'])
const keys: KeyTable = {
  issuers: new Map([[ISSUER, createStaticIssuer(ISSUER, [AUDIENCE], [
    createVerifyKey('es256', 'ES256', createPublicKey(KEYS.es256!.signKey as KeyObject)),
    createVerifyKey('hs256', 'HS256', createSecretKey(KEYS.hs256!.signKey as Buffer)),
    createVerifyKey('eddsa', 'EdDSA', createPublicKey(KEYS.eddsa!.signKey as KeyObject))
  ])]]),
  remotes: [],
  local: [],
  signing: undefined
}
const verifier = (cacheSize: number) => createTokenVerifier({ keys, clockTolerance: 30, maxLifetime: 86400, maxTokenBytes: 8192, cacheSize, now: () => NOW * 1000 })
const verifyToken = verifier(0)
const cachedVerify = verifier(64)

/**
 * The refusal code, or undefined when accepted. An HMAC is checked at once,
 * a public-key signature on the thread pool (a promise): both count.
 */
async function verdict (token: string, verify = verifyToken): Promise<ErrorCode | undefined> {
  try {
    await verify(token)
    return undefined
  } catch (err) {
    if (!isGatewayError(err) || !TOKEN_CODES.has(err.code)) throw new Error(`not a coded refusal: ${String((err as Error)?.stack ?? err)}`)
    return err.code
  }
}

const B64URL = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_']
const b64url = fc.string({ unit: fc.constantFrom(...B64URL), maxLength: 60 })
const jsonText = fc.oneof(fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null'), fc.string({ unit: 'binary', maxLength: 30 }))
const headerValue = fc.record({
  alg: fc.oneof(fc.constantFrom('ES256', 'HS256', 'EdDSA', 'RS256', 'none', 'None', 'es256', ''), fc.jsonValue({ maxDepth: 1 })),
  kid: fc.oneof(fc.constantFrom('es256', 'hs256', 'eddsa', 'nope', '__proto__', '../../dev/null'), fc.jsonValue({ maxDepth: 1 })),
  crit: fc.constant(['exp']),
  b64: fc.boolean(),
  jku: fc.constant('http://127.0.0.1:1/jwks.json')
}, { requiredKeys: [] })
/** Strings shaped more or less like tokens. */
const tokenish = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.tuple(b64url, b64url, b64url).map((parts) => parts.join('.')),
  fc.tuple(jsonText, jsonText, b64url).map(([h, p, s]) => `${b64Bytes(h)}.${b64Bytes(p)}.${s}`),
  fc.tuple(headerValue, fc.jsonValue({ maxDepth: 2 }), fc.uint8Array({ maxLength: 80 })).map(([h, p, s]) => `${b64Bytes(JSON.stringify(h))}.${b64Bytes(JSON.stringify(p) ?? '')}.${Buffer.from(s).toString('base64url')}`),
  fc.array(b64url, { maxLength: 6 }).map((parts) => parts.join('.'))
)

t.test('token front end: any input is verified or refused with a token code, nothing else', async (t) => {
  await fc.assert(fc.asyncProperty(tokenish, async (token) => {
    await verdict(token)
    await verdict(token, cachedVerify)
    codeOf(() => decodeToken(token, 8192), TOKEN_CODES)
  }), params())
  t.pass(`${RUNS} inputs`)
})

/** Valid claims at NOW with the time claims as given (undefined: absent). */
type TimeValue = number | string | null | undefined
const timeValue: fc.Arbitrary<TimeValue> = fc.oneof(
  fc.constant(undefined),
  fc.integer({ min: -200000, max: 200000 }).map((d) => NOW + d),
  fc.integer({ min: -40, max: 40 }).map((d) => NOW + d),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(null, '1700000000', 1e308, -1e308, 0, NOW * 1000)
)

/** The verdict CONTRACT section 3 step 4 gives for these time claims (tolerance 30 s, maxLifetime 24 h). */
function expectedTime (exp: TimeValue, nbf: TimeValue, iat: TimeValue): ErrorCode | undefined {
  for (const v of [exp, nbf, iat]) if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v))) return 'JOTGATE_TOKEN_MALFORMED'
  if (exp === undefined) return 'JOTGATE_TOKEN_MALFORMED'
  const e = exp as number
  if (NOW >= e + 30) return 'JOTGATE_TOKEN_EXPIRED'
  if (nbf !== undefined && NOW < (nbf as number) - 30) return 'JOTGATE_TOKEN_NOT_YET_VALID'
  if (iat !== undefined && NOW < (iat as number) - 30) return 'JOTGATE_TOKEN_NOT_YET_VALID'
  if (e - ((iat as number | undefined) ?? NOW) > 86400) return 'JOTGATE_TOKEN_LIFETIME'
  return undefined
}

t.test('token front end: signed tokens with random time claims get exactly the documented verdict', async (t) => {
  await fc.assert(fc.asyncProperty(timeValue, timeValue, timeValue, fc.constantFrom(KEYS.es256!, KEYS.hs256!, KEYS.eddsa!), async (exp, nbf, iat, key) => {
    const token = mint({ key, payload: claims({ exp, nbf, iat }) })
    const got = await verdict(token)
    const want = expectedTime(exp, nbf, iat)
    if (got !== want) throw new Error(`exp ${exp} nbf ${nbf} iat ${iat}: got ${got ?? 'accepted'}, want ${want ?? 'accepted'}`)
  }), params())
  t.pass(`${RUNS} tokens`)
})

t.test('token front end: signed tokens with random JSON payloads never escape the codes', async (t) => {
  const payload = fc.dictionary(fc.oneof(fc.constantFrom('iss', 'aud', 'sub', 'exp', 'nbf', 'iat', 'jti', 'sid', 'azp', '__proto__', 'constructor'), fc.string({ maxLength: 6 })), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 8 })
  await fc.assert(fc.asyncProperty(payload, fc.boolean(), async (extra, valid) => {
    const body = valid ? { ...claims({ exp: NOW + 600, iat: NOW, nbf: NOW }), ...extra } : extra
    await verdict(mintRaw(JSON.stringify({ alg: 'ES256', kid: 'es256' }), JSON.stringify(body)))
  }), params())
  t.pass(`${RUNS} payloads`)
})

t.test('token front end: every one-character change of a valid token is refused', async (t) => {
  // Canonical base64url gives each token one spelling: no edit keeps it valid.
  const good = mint({ payload: claims({ exp: NOW + 600, iat: NOW, nbf: NOW }) })
  t.equal(await verdict(good), undefined, 'the unaltered token verifies (positive control)')
  const alphabet = [...B64URL, '.', '=', '+', '/', ' ', '%', '\u00e9']
  const edit = fc.tuple(fc.nat({ max: good.length }), fc.constantFrom(...alphabet), fc.constantFrom('replace', 'insert', 'delete'))
  await fc.assert(fc.asyncProperty(edit, async ([at, ch, op]) => {
    const i = Math.min(at, good.length - 1)
    const token = op === 'insert' ? good.slice(0, at) + ch + good.slice(at)
      : op === 'delete' ? good.slice(0, i) + good.slice(i + 1)
        : good.slice(0, i) + ch + good.slice(i + 1)
    fc.pre(token !== good)
    if (await verdict(token) === undefined) throw new Error(`an edited token verified: ${op} ${JSON.stringify(ch)} at ${at}`)
  }), params())
  t.pass(`${RUNS} edits`)
})

t.test('token front end: the duplicate-name scan finds exactly the duplicates JSON.parse would hide', async (t) => {
  /** `"name"` with every character as a \u escape: the same name, spelled otherwise. */
  const escaped = (name: string): string => `"${Array.from({ length: name.length }, (_, i) => `\\u${name.charCodeAt(i).toString(16).padStart(4, '0')}`).join('')}"`
  const object = fc.dictionary(fc.string({ unit: 'binary', maxLength: 6 }), fc.jsonValue({ maxDepth: 3, stringUnit: 'binary' }), { minKeys: 1, maxKeys: 6 })
  fc.assert(fc.property(object, fc.nat(), fc.boolean(), fc.boolean(), (value, pick, spellOtherwise, nest) => {
    const text = JSON.stringify(nest ? { outer: [value] } : value)
    if (hasDuplicateName(text)) throw new Error(`a duplicate reported in JSON.stringify output: ${text}`)
    const names = Object.keys(value)
    const name = names[pick % names.length]!
    const inner = JSON.stringify(value)
    const withDuplicate = `${inner.slice(0, -1)},${spellOtherwise ? escaped(name) : JSON.stringify(name)}:0}`
    JSON.parse(withDuplicate)
    if (!hasDuplicateName(nest ? `{"outer":[${withDuplicate}]}` : withDuplicate)) throw new Error(`duplicate ${JSON.stringify(name)} missed in ${withDuplicate}`)
  }), params())
  t.pass(`${RUNS} objects`)
})

// ---------------------------------------------------------------------------
// The claim-header mapper.

const CLAIM_UNSAFE = new Set(['JOTGATE_CLAIM_UNSAFE'])
const PREFIX = /^utf-8''/i
const claimValue = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.string({ unit: 'binary-ascii', maxLength: 20 }),
  fc.array(fc.string({ unit: 'grapheme', maxLength: 8 }), { maxLength: 4 }),
  fc.jsonValue({ maxDepth: 4, stringUnit: 'binary' })
)

/** True when the value holds a C0 control, DEL or a lone surrogate anywhere (names included). */
function holdsUnsafe (value: unknown): boolean {
  if (typeof value === 'string') return /[\x00-\x1f\x7f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(value)
  if (Array.isArray(value)) return value.some(holdsUnsafe)
  if (value !== null && typeof value === 'object') return Object.entries(value).some(([k, v]) => holdsUnsafe(k) || holdsUnsafe(v))
  return false
}

t.test('claim-header mapper: values are visible ASCII, decode back, or the claim is refused', async (t) => {
  const mapper = createHeaderMapper({ 'X-A': 'a', 'X-Nested': 'b.c', 'X-User-Roles': 'roles' })
  const claimsArb = fc.record({ a: claimValue, b: fc.oneof(fc.record({ c: claimValue }), claimValue), roles: claimValue }, { requiredKeys: [] })
  fc.assert(fc.property(claimsArb, (input) => {
    let headers: Record<string, string> | undefined
    const code = codeOf(() => { headers = mapper(input) }, CLAIM_UNSAFE)
    const mapped: Array<[string, unknown]> = [['x-a', input.a], ['x-nested', (input.b as { c?: unknown } | undefined)?.c], ['x-user-roles', input.roles]]
    const unsafe = mapped.some(([, v]) => holdsUnsafe(v))
    if ((code !== undefined) !== unsafe) throw new Error(`refused: ${code ?? 'no'}, unsafe input: ${unsafe}`)
    if (headers === undefined) return
    for (const [name, value] of mapped) {
      const header = headers[name]
      if (value === undefined) { if (header !== undefined) throw new Error(`${name}: a header for an absent claim`); continue }
      if (header === undefined) throw new Error(`${name}: no header for ${JSON.stringify(value)}`)
      // No CR, LF, NUL or any other byte outside visible ASCII; nothing a parser trims.
      if (!/^[\x20-\x7e]*$/.test(header) || header !== header.trim()) throw new Error(`${name}: unsafe header ${JSON.stringify(header)}`)
      validateHeaderValue(name, header)
      // Unambiguous: the receiver gets the value back by the documented rules.
      const text = PREFIX.test(header) ? decodeURIComponent(header.slice(7)) : header
      if (typeof value === 'string') { if (text !== value) throw new Error(`${name}: ${JSON.stringify(value)} came back as ${JSON.stringify(text)}`); continue }
      if (Array.isArray(value) && value.every((s) => typeof s === 'string' && s !== '' && !s.includes(',') && !s.startsWith(' ') && !s.endsWith(' '))) {
        if (text !== value.join(',')) throw new Error(`${name}: list came back as ${JSON.stringify(text)}`)
        continue
      }
      if (JSON.stringify(JSON.parse(header)) !== JSON.stringify(value)) throw new Error(`${name}: ${JSON.stringify(value)} came back as ${header}`)
    }
  }), params())
  t.pass(`${RUNS} claim sets`)
})

// ---------------------------------------------------------------------------
// Over real sockets: the path matched is the path forwarded.

t.test('gateway: a target is refused before the upstream, or the upstream sees exactly the normalized path', async (t) => {
  const up = await startUpstream()
  const gw = await startGateway({
    name: 'sec-properties',
    config: { routes: [{ path: '/admin', upstream: up.url, require: { roles: ['admin'] } }, { path: '/', upstream: up.url, auth: 'none' }] }
  })
  t.teardown(async () => { await gw.close(); await up.close() })
  const admin = mint({ payload: claims({ sub: 'root', roles: ['admin'] }) })
  const VISIBLE = /^[\x21-\x7e]+$/
  // CR and LF would end the request line of the raw request itself, and a
  // space would split it: Node then reads another target than the one sent
  // (the normalizer's own property covers those characters).
  const socketTarget = target.filter((s) => !/[\r\n ]/.test(s) && s.length > 0)
  let forwardedCount = 0
  let adminCount = 0
  await fc.assert(fc.asyncProperty(socketTarget, async (raw) => {
    let expected: ReturnType<typeof normalizeTarget> | undefined
    try { expected = normalizeTarget(raw) } catch {}
    const before = up.seen.length
    const res = await rawRequest(gw.url, rawText(raw, [['Authorization', `Bearer ${admin}`]]))
    if (res.status === 400 && up.seen.length === before && (expected === undefined || !VISIBLE.test(raw))) {
      // Refused by step 1, or by Node's parser before it (raw spaces, tabs, non-ASCII bytes).
      return
    }
    if (expected === undefined) throw new Error(`${JSON.stringify(raw)}: refused by step 1, yet ${res.status}, upstream saw ${up.seen.length - before}`)
    if (res.status !== 200 || up.seen.length !== before + 1) throw new Error(`${JSON.stringify(raw)}: ${res.status} ${res.body.slice(0, 120)}`)
    const seen = up.seen.at(-1)!
    // Known deviation: an empty query (`/a?`) reaches the upstream as `/a`
    // (src/proxy/register.ts passes the query without its `?` to reply-from,
    // which drops an empty one). The path, which routing depends on, is exact.
    const query = expected.query === '?' ? '' : expected.query
    if (seen.url !== expected.path + query) throw new Error(`${JSON.stringify(raw)}: matched ${expected.path}${expected.query}, upstream saw ${seen.url}`)
    // The protected route applied exactly when the forwarded path is under /admin.
    const underAdmin = /^\/admin(\/|$)/.test(expected.path)
    if ((seen.headers['x-user-roles'] === 'admin') !== underAdmin) throw new Error(`${JSON.stringify(raw)}: route mismatch for ${expected.path}`)
    forwardedCount++
    if (underAdmin) adminCount++
  }), params(Math.max(20, Math.round(RUNS / 2))))
  t.ok(forwardedCount > 0, `${forwardedCount} targets forwarded, the rest refused before the upstream`)
  t.ok(adminCount > 0, `${adminCount} of them through the protected /admin route`)
})
