/**
 * Attack family: claims and time (CONTRACT section 3 steps 4 and 5). `exp`
 * is required; `exp`, `nbf`, `iat` are finite numbers checked with the
 * clock tolerance (30 s) and maxLifetime (24 h); `iss` must be a configured
 * issuer exactly, `aud` must hold an accepted audience; identity claims are
 * strings; a member name twice in one object is refused (parsers disagree
 * on which copy wins); revocation by jti, sid and sub holds on cache hits.
 * The gateway's clock is frozen at NOW, so boundaries are tested exactly.
 */
import t from 'tap'
import { startUpstream } from '../helpers/upstream.js'
import { startGateway } from '../helpers/gateway.js'
import { AUDIENCE, ISSUER, claims, mint, mintRaw, now, zoo } from '../helpers/zoo.js'
import { accepted, refuseAll, refused, zooCases, type TokenCase } from './kit.js'

const NOW = now()
const up = await startUpstream()
const gw = await startGateway({ name: 'sec-claims-time', now: () => NOW * 1000, config: { routes: [{ path: '/', upstream: up.url }] } })
t.teardown(async () => { await gw.close(); await up.close() })

/** Valid claims at NOW (iat = nbf = NOW, exp = NOW + 600), with overrides. */
const at = (overrides: Record<string, unknown> = {}): Record<string, unknown> => claims({ iat: NOW, nbf: NOW, exp: NOW + 600, ...overrides })
/** A token whose payload is the JSON of `at()` with `extra` spliced in as raw JSON text (`"exp":1e400`). */
const rawPayload = (extra: string, overrides: Record<string, unknown> = {}): string => {
  const json = JSON.stringify(at(overrides))
  return mintRaw(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid: 'es256' }), `${json.slice(0, -1)},${extra}}`)
}

t.test('the zoo: expired, not yet valid, wrong issuer and audience, exp missing or a string, too long', async (t) => {
  await refuseAll(t, gw, up, zooCases(zoo(), 'claims-time'))
  await accepted(t, gw, up, mint({ payload: at() }), 'alice', 'valid at NOW (positive control)')
})

t.test('exp, nbf and iat of every type and size', async (t) => {
  const numericDate = 'RFC 7519 section 2 (NumericDate: a JSON number)'
  const cases: TokenCase[] = []
  for (const name of ['exp', 'nbf', 'iat']) {
    const without = { [name]: undefined }
    const odd: Array<[string, string, string]> = [
      ['a numeric string', JSON.stringify(String(NOW + 600)), numericDate],
      ['a date string', JSON.stringify(new Date((NOW + 600) * 1000).toISOString()), numericDate],
      ['null', 'null', numericDate],
      ['true', 'true', numericDate],
      ['an array', `[${NOW + 600}]`, numericDate],
      ['an object', `{"$date":${NOW + 600}}`, numericDate],
      // JSON.parse reads 1e400 as Infinity, which no comparison must accept.
      ['1e400', '1e400', 'RFC 8259 section 6 (numbers beyond IEEE 754); CWE-20'],
      ['-1e400', '-1e400', 'RFC 8259 section 6; CWE-20']
    ]
    for (const [label, json, src] of odd) {
      cases.push({ name: `${name} ${label}`, src, token: rawPayload(`"${name}":${json}`, without), code: 'JOTGATE_TOKEN_MALFORMED' })
    }
  }
  const lifetime = 'CONTRACT section 2 (maxLifetime); RFC 8725 section 3.10'
  cases.push(
    { name: 'exp -1', src: 'RFC 7519 section 4.1.4', token: mint({ payload: at({ exp: -1 }) }), code: 'JOTGATE_TOKEN_EXPIRED' },
    { name: 'exp 0', src: 'RFC 7519 section 4.1.4', token: mint({ payload: at({ exp: 0 }) }), code: 'JOTGATE_TOKEN_EXPIRED' },
    { name: 'exp 1e-300', src: 'RFC 7519 section 4.1.4', token: mint({ payload: at({ exp: 1e-300 }) }), code: 'JOTGATE_TOKEN_EXPIRED' },
    { name: 'exp -1e308', src: 'RFC 7519 section 4.1.4', token: mint({ payload: at({ exp: -1e308 }) }), code: 'JOTGATE_TOKEN_EXPIRED' },
    { name: 'exp NOW - 30.5 (a float past the tolerance)', src: 'RFC 7519 section 2 (non-integer NumericDate)', token: mint({ payload: at({ exp: NOW - 30.5 }) }), code: 'JOTGATE_TOKEN_EXPIRED' },
    { name: 'exp 1e308', src: lifetime, token: mint({ payload: at({ exp: 1e308 }) }), code: 'JOTGATE_TOKEN_LIFETIME' },
    { name: 'exp 2^53 + 1', src: lifetime, token: rawPayload('"exp":9007199254740993', { exp: undefined }), code: 'JOTGATE_TOKEN_LIFETIME' },
    { name: 'exp in milliseconds', src: `${lifetime} (a common issuer bug)`, token: mint({ payload: at({ exp: (NOW + 600) * 1000 }) }), code: 'JOTGATE_TOKEN_LIFETIME' },
    { name: 'exp far ahead, no iat', src: lifetime, token: mint({ payload: at({ iat: undefined, exp: NOW + 24 * 3600 + 1 }) }), code: 'JOTGATE_TOKEN_LIFETIME' },
    { name: 'iat -1 (lifetime from 1969)', src: lifetime, token: mint({ payload: at({ iat: -1 }) }), code: 'JOTGATE_TOKEN_LIFETIME' },
    { name: 'iat -1e308', src: lifetime, token: mint({ payload: at({ iat: -1e308 }) }), code: 'JOTGATE_TOKEN_LIFETIME' },
    { name: 'nbf 1e308', src: 'RFC 7519 section 4.1.5', token: mint({ payload: at({ nbf: 1e308 }) }), code: 'JOTGATE_TOKEN_NOT_YET_VALID' },
    { name: 'iat 1e308', src: 'RFC 7519 section 4.1.6; CONTRACT section 3 step 4', token: mint({ payload: at({ iat: 1e308 }) }), code: 'JOTGATE_TOKEN_NOT_YET_VALID' },
    { name: 'exp missing, nbf and iat present', src: 'CONTRACT section 3 step 4 (exp required)', token: mint({ payload: at({ exp: undefined }) }), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'exp missing, no time claim at all', src: 'CONTRACT section 3 step 4', token: mint({ payload: at({ exp: undefined, nbf: undefined, iat: undefined }) }), code: 'JOTGATE_TOKEN_MALFORMED' }
  )
  await refuseAll(t, gw, up, cases)
  // Floats and old nbf values are NumericDates like any other.
  await accepted(t, gw, up, mint({ payload: at({ exp: NOW + 600.5, nbf: NOW - 0.5, iat: NOW + 0.25 }) }), 'alice', 'float exp, nbf, iat [RFC 7519 section 2]')
  await accepted(t, gw, up, mint({ payload: at({ nbf: -1 }) }), 'alice', 'nbf -1 (long valid)')
  await accepted(t, gw, up, mint({ payload: at({ nbf: undefined, iat: undefined }) }), 'alice', 'exp only')
})

t.test('boundaries: clock tolerance 30 s and maxLifetime 24 h, exactly', async (t) => {
  const tolerance = 'RFC 7519 sections 4.1.4-4.1.6 ("some small leeway"); CONTRACT section 2'
  await refuseAll(t, gw, up, [
    { name: 'exp = NOW - 30', src: tolerance, token: mint({ payload: at({ iat: NOW - 100, nbf: NOW - 100, exp: NOW - 30 }) }), code: 'JOTGATE_TOKEN_EXPIRED' },
    { name: 'nbf = NOW + 31', src: tolerance, token: mint({ payload: at({ nbf: NOW + 31 }) }), code: 'JOTGATE_TOKEN_NOT_YET_VALID' },
    { name: 'iat = NOW + 31', src: tolerance, token: mint({ payload: at({ iat: NOW + 31, nbf: undefined }) }), code: 'JOTGATE_TOKEN_NOT_YET_VALID' },
    { name: 'exp - iat = 24 h + 1 s', src: 'CONTRACT section 2 (maxLifetime)', token: mint({ payload: at({ exp: NOW + 86401 }) }), code: 'JOTGATE_TOKEN_LIFETIME' }
  ])
  await accepted(t, gw, up, mint({ payload: at({ iat: NOW - 100, nbf: NOW - 100, exp: NOW - 29 }) }), 'alice', 'exp = NOW - 29')
  await accepted(t, gw, up, mint({ payload: at({ nbf: NOW + 30 }) }), 'alice', 'nbf = NOW + 30')
  await accepted(t, gw, up, mint({ payload: at({ iat: NOW + 30, nbf: undefined }) }), 'alice', 'iat = NOW + 30')
  await accepted(t, gw, up, mint({ payload: at({ exp: NOW + 86400 }) }), 'alice', 'exp - iat = 24 h')
})

t.test('tolerance and lifetime against the running clock (formerly in token-zoo.test.ts)', async (t) => {
  const real = await startGateway({ name: 'sec-claims-time-clock', config: { routes: [{ path: '/', upstream: up.url }] } })
  t.teardown(() => real.close())
  await refuseAll(t, real, up, [
    { name: 'exp beyond the tolerance', src: 'RFC 7519 section 4.1.4', token: mint({ payload: claims({ iat: now() - 100, nbf: now() - 100, exp: now() - 31 }) }), code: 'JOTGATE_TOKEN_EXPIRED' },
    { name: 'nbf beyond the tolerance', src: 'RFC 7519 section 4.1.5', token: mint({ payload: claims({ nbf: now() + 45 }) }), code: 'JOTGATE_TOKEN_NOT_YET_VALID' },
    { name: 'exp - now over maxLifetime without iat', src: 'CONTRACT section 2 (maxLifetime)', token: mint({ payload: claims({ iat: undefined, exp: now() + 25 * 3600 }) }), code: 'JOTGATE_TOKEN_LIFETIME' }
  ])
  // Within the 30 s clock tolerance both ways, and an aud array holding ours: accepted.
  await accepted(t, real, up, mint({ payload: claims({ exp: now() - 10 }) }), 'alice', 'expired 10 s ago (tolerance)')
  await accepted(t, real, up, mint({ payload: claims({ nbf: now() + 10, iat: now() + 10 }) }), 'alice', 'nbf 10 s ahead (tolerance)')
  await accepted(t, real, up, mint({ payload: claims({ aud: ['other', AUDIENCE] }) }), 'alice', 'aud array holding ours')
})

t.test('aud: wrong, in arrays, of other types', async (t) => {
  const src = 'RFC 8725 section 3.9; RFC 7519 section 4.1.3'
  const auds: Array<[string, unknown]> = [
    ['another audience', 'other'], ['ours in upper case', AUDIENCE.toUpperCase()], ['ours with a space', `${AUDIENCE} `],
    ['ours and another, comma-joined', `${AUDIENCE},other`], ['an array without ours', ['other', 'x']], ['an empty array', []],
    ['ours nested in an array', [[AUDIENCE]]], ['an object', { [AUDIENCE]: true }], ['null', null], ['a number', 1], ['absent', undefined]
  ]
  await refuseAll(t, gw, up, auds.map(([label, aud]) => ({ name: `aud ${label}`, src, token: mint({ payload: at({ aud }) }), code: 'JOTGATE_TOKEN_AUDIENCE' })))
  await accepted(t, gw, up, mint({ payload: at({ aud: [AUDIENCE] }) }), 'alice', 'aud [ours]')
  await accepted(t, gw, up, mint({ payload: at({ aud: [1, null, 'other', AUDIENCE] }) }), 'alice', 'aud array holding ours among junk')
})

t.test('iss: wrong, look-alikes, other types; identity claims must be strings', async (t) => {
  const src = 'RFC 8725 section 3.8 (exact issuer)'
  const cases: TokenCase[] = [
    ['iss __proto__', '__proto__'], ['iss with trailing slash', `${ISSUER}/`], ['iss in upper case', ISSUER.toUpperCase()],
    ['iss with a NUL', `${ISSUER}\u0000`], ['iss with a trailing space', `${ISSUER} `], ['iss over http', ISSUER.replace('https', 'http')],
    ['iss with a path', `${ISSUER}/evil`], ['iss empty', '']
  ].map(([name, iss]) => ({ name: name!, src, token: mint({ payload: at({ iss }) }), code: 'JOTGATE_TOKEN_ISSUER' }))
  const typed = 'CONTRACT section 3 step 4 (iss, sub, jti, sid, azp are strings); RFC 7519 section 4.1'
  for (const [claim, value] of [['iss', [ISSUER]], ['iss', null], ['iss', 1], ['sub', 42], ['sub', ['alice']], ['jti', 1], ['sid', {}], ['azp', ['web']]] as const) {
    cases.push({ name: `${claim} ${JSON.stringify(value)}`, src: typed, token: mint({ payload: at({ [claim]: value }) }), code: 'JOTGATE_TOKEN_MALFORMED' })
  }
  await refuseAll(t, gw, up, cases)
  await accepted(t, gw, up, mint({ payload: at({ iss: ISSUER }) }), 'alice', 'iss exact (positive control)')
})

t.test('duplicate member names are refused, at any depth, however spelled', async (t) => {
  const header = JSON.stringify({ alg: 'ES256', typ: 'JWT', kid: 'es256' })
  const dup = 'RFC 7515 section 4; RFC 7519 section 4; RFC 7493 section 2.3'
  const couch = 'CVE-2017-12635 (CouchDB: duplicate "roles", parsers disagree)'
  const body = JSON.stringify(at()).slice(1, -1)
  const payload = (text: string): string => mintRaw(header, text)
  await refuseAll(t, gw, up, [
    { name: 'sub twice', src: dup, token: payload(`{${body},"sub":"admin"}`), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'roles twice', src: couch, token: payload(`{"roles":[],${body.replace('"roles":["user"],', '')},"roles":["admin"]}`), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'exp twice (past, then future)', src: dup, token: payload(`{"exp":1,${body}}`), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'iss twice (foreign, then ours)', src: dup, token: payload(`{"iss":"https://evil.test",${body}}`), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'aud twice', src: dup, token: payload(`{${body},"aud":"other"}`), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'sub and s\\u0075b (the same name escaped)', src: `${dup}; RFC 8259 section 7`, token: payload(`{${body},"s\\u0075b":"admin"}`), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'a nested duplicate (address.country)', src: 'RFC 7493 section 2.3 (any depth)', token: payload(`{${body},"address":{"country":"FR","country":"DE"}}`), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'a duplicate inside an array of objects', src: 'RFC 7493 section 2.3', token: payload(`{${body},"orgs":[{"id":1},{"id":2,"id":3}]}`), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'header alg twice (none, then ES256)', src: dup, token: mintRaw('{"alg":"none","typ":"JWT","kid":"es256","alg":"ES256"}', JSON.stringify(at())), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'header kid twice', src: dup, token: mintRaw('{"alg":"ES256","kid":"nope","kid":"es256"}', JSON.stringify(at())), code: 'JOTGATE_TOKEN_MALFORMED' },
    { name: 'header crit hidden behind a duplicate', src: dup, token: mintRaw('{"alg":"ES256","kid":"es256","crit":["x"],"crit":[]}', JSON.stringify(at())), code: 'JOTGATE_TOKEN_MALFORMED' }
  ])
  // Positive controls: the same name in different objects, names differing
  // in case, and strings that merely look like members.
  await accepted(t, gw, up, payload(`{${body},"a":{"x":1},"b":{"x":2},"list":[{"x":1},{"x":2}]}`), 'alice', 'one name in sibling objects')
  await accepted(t, gw, up, payload(`{${body},"Sub":"x","SUB":"y"}`), 'alice', 'names differing in case')
  await accepted(t, gw, up, payload(`{${body},"note":"\\"sub\\":\\"admin\\",\\"sub\\":","k\\"":{"sub":"nested"}}`), 'alice', 'strings that hold "sub": and escaped quotes')
})

t.test('revocation of a cached token is honoured on the next request', async (t) => {
  const payload = at({ sub: 'revoke-me' })
  const token = mint({ payload })
  const src = 'CONTRACT section 3 step 5 (revocation on every request, cache hit or not)'
  // A token enters the verified-token cache on its first verification
  // (the cache has room), so the second call is a cache hit.
  await accepted(t, gw, up, token, 'revoke-me', 'before revocation (first: cached now)')
  await accepted(t, gw, up, token, 'revoke-me', 'before revocation (a cache hit)')
  await gw.gateway.store.revokeJti(payload.jti as string, payload.exp as number)
  await refused(t, gw, up, token, 'JOTGATE_TOKEN_REVOKED', `after revocation [${src}]`)
  await refused(t, gw, up, token, 'JOTGATE_TOKEN_REVOKED', `after revocation, again [${src}]`)
  // Positive control: another token of the same user still works.
  await accepted(t, gw, up, mint({ payload: at({ sub: 'revoke-me' }) }), 'revoke-me', 'another jti')
})

t.test('revocation by session and by subject', async (t) => {
  const src = 'CONTRACT section 3 step 5 (jti, sid, sub at or after iat)'
  const session = at({ sub: 'sid-user' })
  const sameSession = mint({ payload: at({ sub: 'sid-user', sid: session.sid }) })
  await accepted(t, gw, up, mint({ payload: session }), 'sid-user', 'session token before')
  await gw.gateway.store.revokeSid(session.sid as string, 600)
  await refused(t, gw, up, mint({ payload: session }), 'JOTGATE_TOKEN_REVOKED', `session token after revokeSid [${src}]`)
  await refused(t, gw, up, sameSession, 'JOTGATE_TOKEN_REVOKED', `another token of the session [${src}]`)
  await accepted(t, gw, up, mint({ payload: at({ sub: 'sid-user' }) }), 'sid-user', 'a token of another session')

  const cut = NOW
  const old = mint({ payload: at({ sub: 'sub-user', iat: cut - 5 }) })
  const same = mint({ payload: at({ sub: 'sub-user', iat: cut }) })
  await accepted(t, gw, up, old, 'sub-user', 'older token before revokeSub')
  await gw.gateway.store.revokeSub('sub-user', cut, 600)
  await refused(t, gw, up, old, 'JOTGATE_TOKEN_REVOKED', `issued before the cut-off [${src}]`)
  await refused(t, gw, up, same, 'JOTGATE_TOKEN_REVOKED', `issued at the cut-off [${src}]`)
  // A float iat a hair after the cut-off is the same second (whole-second comparison).
  await refused(t, gw, up, mint({ payload: at({ sub: 'sub-user', iat: cut + 0.5 }) }), 'JOTGATE_TOKEN_REVOKED', `issued within the cut-off second [${src}; whole seconds]`)
  await refused(t, gw, up, mint({ payload: at({ sub: 'sub-user', iat: undefined }) }), 'JOTGATE_TOKEN_REVOKED', `no iat under a revoked sub (fail closed) [${src}]`)
  await accepted(t, gw, up, mint({ payload: at({ sub: 'sub-user', iat: cut + 1, nbf: cut + 1 }) }), 'sub-user', 'issued after the cut-off')
  await accepted(t, gw, up, mint({ payload: at({ sub: 'other-user', iat: cut - 5 }) }), 'other-user', 'another subject')
})
