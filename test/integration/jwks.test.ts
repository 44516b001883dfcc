/**
 * Outside issuers (CONTRACT sections 2, 3 step 4 and 6): keys fetched from a
 * real JWKS server on loopback, per-issuer audience and algorithms, JWK
 * filtering, rotation at the provider, a flood of unknown kids, provider
 * down at start / down later / slow / serving garbage, and headers (jku,
 * x5u, jwk, x5c) and issuers that must never cause a fetch.
 */
import t, { type Test } from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { startUpstream, type Upstream } from '../helpers/upstream.js'
import { baseConfig, captureLogger, startGateway, type TestGateway } from '../helpers/gateway.js'
import { keyDir } from '../helpers/zoo.js'
import { createRemoteIssuer } from '../../src/keys/jwks-source.js'
import { loadConfigObject } from '../../src/config/load.js'
import { idpClaims, idpToken, providerKey, startJwksProvider, type JwksProvider, type ProviderKey } from '../helpers/jwks-provider.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface Answer { status: number, code: string | undefined, body: Record<string, unknown> }

async function call (gw: TestGateway, token: string, path = '/api/x'): Promise<Answer> {
  const res = await fetch(`${gw.url}${path}`, { headers: { authorization: `Bearer ${token}` } })
  const text = await res.text()
  let body: Record<string, unknown> = {}
  try { body = JSON.parse(text) as Record<string, unknown> } catch {}
  return { status: res.status, code: typeof body.code === 'string' ? body.code : undefined, body }
}

async function readyz (gw: TestGateway): Promise<{ status: number, reasons: string[] }> {
  const res = await fetch(`${gw.adminUrl!}/readyz`)
  const body = await res.json() as { reasons?: string[] }
  return { status: res.status, reasons: body.reasons ?? [] }
}

/** Polls `fn` until it returns true or `ms` pass; resolves to the time it took (or -1). */
async function until (fn: () => Promise<boolean>, ms: number, every = 100): Promise<number> {
  const start = Date.now()
  while (Date.now() - start < ms) {
    if (await fn()) return Date.now() - start
    await sleep(every)
  }
  return -1
}

interface IssuerOptions {
  provider: JwksProvider
  discovery?: boolean
  audience?: string[]
  algorithms?: string[]
  cacheTtl?: string
  maxStale?: string
  cooldown?: string
  fetchTimeout?: string
}

function issuerConfig (o: IssuerOptions): Record<string, unknown> {
  return {
    issuer: o.provider.issuer,
    ...(o.discovery === true ? { discovery: true } : { jwksUri: o.provider.jwksUri }),
    audience: o.audience ?? ['api'],
    algorithms: o.algorithms ?? ['RS256', 'ES256', 'ES384', 'ES512', 'EdDSA'],
    cacheTtl: o.cacheTtl ?? '10m',
    maxStale: o.maxStale ?? '1h',
    cooldown: o.cooldown ?? '30s',
    fetchTimeout: o.fetchTimeout ?? '1s'
  }
}

function gatewayConfig (issuers: IssuerOptions[], up: Upstream): Record<string, unknown> {
  return {
    tokens: { trustedIssuers: issuers.map(issuerConfig) },
    routes: [{ path: '/', upstream: up.url }]
  }
}

async function setup (t: Test, issuers: IssuerOptions[], admin = false): Promise<{ up: Upstream, gw: TestGateway, startMs: number }> {
  const up = await startUpstream()
  const started = Date.now()
  const gw = await startGateway({ name: 'jwks', admin, config: gatewayConfig(issuers, up) })
  const startMs = Date.now() - started
  t.teardown(async () => { await gw.close(); await up.close() })
  return { up, gw, startMs }
}

async function provider (t: Test, keys: ProviderKey[] = []): Promise<JwksProvider> {
  const p = await startJwksProvider(keys.map((k) => k.jwk))
  t.teardown(() => p.close())
  return p
}

// Made once: RSA key generation is the slow part.
const RSA = providerKey('RSA', 'rsa')

t.test('every key type verifies; each issuer has its own audience and algorithms', async (t) => {
  const rsaAny = { ...providerKey('RSA', 'rsa-any', { alg: undefined }), alg: 'PS256' }
  const keysA = [
    RSA,
    rsaAny,
    providerKey('P-256', 'ec256'),
    providerKey('P-384', 'ec384'),
    providerKey('P-521', 'ec521'),
    providerKey('Ed25519', 'ed')
  ]
  const a = await provider(t, keysA)
  const b384 = providerKey('P-384', 'b384')
  const bKey = providerKey('P-256', 'b256')
  const b = await provider(t, [bKey, b384])
  const { up, gw } = await setup(t, [
    { provider: a, audience: ['api-a'], algorithms: ['RS256', 'PS256', 'ES256', 'ES384', 'ES512', 'EdDSA'] },
    { provider: b, discovery: true, audience: ['api-b'], algorithms: ['ES256'] }
  ])
  t.same(a.hits, { discovery: 0, jwks: 1, total: 1 }, 'issuer A: its JWKS fetched once at start')
  t.same(b.hits, { discovery: 1, jwks: 1, total: 2 }, 'issuer B: discovery document, then the JWKS it names')

  for (const key of keysA) {
    const res = await call(gw, idpToken(key, idpClaims(a.issuer, 'api-a', { sub: `user-${key.kid}` })))
    t.equal(res.status, 200, `${key.kid} (${key.alg}) accepted`)
    t.equal(up.seen.at(-1)?.headers['x-user-id'], `user-${key.kid}`, `${key.kid}: identity forwarded`)
  }
  // A JWK without alg serves each RSA algorithm the issuer allows.
  t.equal((await call(gw, idpToken({ ...rsaAny, alg: 'RS256' }, idpClaims(a.issuer, 'api-a')))).status, 200, 'alg-less RSA JWK with RS256')
  t.equal((await call(gw, idpToken(bKey, idpClaims(b.issuer, 'api-b')))).status, 200, 'issuer B (discovery) accepted')
  const accepted = up.seen.length
  t.equal(accepted, keysA.length + 2)

  const refused: Array<[string, string, number, string]> = [
    ['audience of the other issuer (A token, aud api-b)', idpToken(RSA, idpClaims(a.issuer, 'api-b')), 401, 'JOTGATE_TOKEN_AUDIENCE'],
    ['audience of the other issuer (B token, aud api-a)', idpToken(bKey, idpClaims(b.issuer, 'api-a')), 401, 'JOTGATE_TOKEN_AUDIENCE'],
    ['RS384 is outside issuer A algorithms (alg-less RSA JWK)', idpToken({ ...rsaAny, alg: 'RS384' }, idpClaims(a.issuer, 'api-a')), 401, 'JOTGATE_TOKEN_ALGORITHM'],
    ['header alg differs from the key alg', idpToken({ ...keysA[2]!, alg: 'ES384' }, idpClaims(a.issuer, 'api-a'), {}, 'ES256'), 401, 'JOTGATE_TOKEN_ALGORITHM'],
    ['ES384 key of issuer B: ES384 outside its algorithms', idpToken(b384, idpClaims(b.issuer, 'api-b')), 401, 'JOTGATE_TOKEN_KEY_UNKNOWN'],
    ['A key named in a B token', idpToken(keysA[2]!, idpClaims(b.issuer, 'api-b')), 401, 'JOTGATE_TOKEN_KEY_UNKNOWN'],
    ['alg none', `${Buffer.from(JSON.stringify({ alg: 'none', kid: 'rsa' })).toString('base64url')}.${Buffer.from(JSON.stringify(idpClaims(a.issuer, 'api-a'))).toString('base64url')}.`, 401, '']
  ]
  for (const [name, token, status, code] of refused) {
    const res = await call(gw, token)
    t.equal(res.status, status, `${name}: ${status}`)
    if (code !== '') t.equal(res.code, code, `${name}: ${code}`)
    else t.match(res.code, /^JOTGATE_TOKEN_/, `${name}: a token code`)
  }
  t.equal(up.seen.length, accepted, 'the upstream saw none of the refused tokens')
})

t.test('JWKs that must not verify are ignored (RSA 1024, use enc, key_ops without verify, private, mismatched)', async (t) => {
  const good = providerKey('P-256', 'good')
  const opsOk = providerKey('P-256', 'ops-ok', { key_ops: ['verify'] })
  const ignored: Array<[string, ProviderKey]> = [
    ['RSA 1024', providerKey('RSA-1024', 'weak')],
    ['RSA 1024 without alg', providerKey('RSA-1024', 'weak-any', { alg: undefined })],
    ['use: enc', providerKey('P-256', 'enc', { use: 'enc' })],
    ['key_ops without verify', providerKey('P-256', 'ops', { key_ops: ['encrypt', 'sign'] })],
    ['EC key published with alg RS256', providerKey('P-256', 'mismatch', { alg: 'RS256' }, 'ES256')],
    ['P-384 key published as ES256', providerKey('P-384', 'curve', { alg: 'ES256' }, 'ES256')]
  ]
  const priv = providerKey('P-256', 'private')
  priv.jwk = { ...priv.privateKey.export({ format: 'jwk' }), kid: 'private', alg: 'ES256', use: 'sig' }
  ignored.push(['a private JWK (d member)', priv])
  const p = await provider(t, [good, opsOk, ...ignored.map(([, k]) => k)])
  const { up, gw } = await setup(t, [{ provider: p }])

  t.equal((await call(gw, idpToken(good, idpClaims(p.issuer, 'api')))).status, 200, 'the good key verifies')
  t.equal((await call(gw, idpToken(opsOk, idpClaims(p.issuer, 'api')))).status, 200, 'key_ops [verify] verifies')
  for (const [name, key] of ignored) {
    const res = await call(gw, idpToken(key, idpClaims(p.issuer, 'api')))
    t.equal(res.status, 401, `${name}: 401`)
    t.equal(res.code, 'JOTGATE_TOKEN_KEY_UNKNOWN', `${name}: key unknown`)
  }
  t.equal(up.seen.length, 2, 'only the two good tokens reached the upstream')
  t.ok(p.hits.jwks <= 2, `at most one refetch for all the unknown kids (${p.hits.jwks} fetches)`)
})

t.test('rotation at the provider: the new kid is picked up on first use, with exactly one extra fetch', async (t) => {
  const k1 = providerKey('P-256', 'k1')
  const k2 = providerKey('P-256', 'k2')
  const p = await provider(t, [k1])
  const { gw } = await setup(t, [{ provider: p, cooldown: '30s', cacheTtl: '10m' }])
  t.equal(p.hits.jwks, 1, 'fetched at start')
  t.equal((await call(gw, idpToken(k1, idpClaims(p.issuer, 'api')))).status, 200)
  t.equal(p.hits.jwks, 1, 'a known kid causes no fetch')

  p.keys.push(k2.jwk)
  const first = await call(gw, idpToken(k2, idpClaims(p.issuer, 'api')))
  t.equal(first.status, 200, 'first token of the new kid accepted')
  t.equal(p.hits.jwks, 2, 'exactly one extra fetch')
  t.equal((await call(gw, idpToken(k2, idpClaims(p.issuer, 'api')))).status, 200)
  t.equal((await call(gw, idpToken(k1, idpClaims(p.issuer, 'api')))).status, 200, 'the old kid keeps working while published')
  t.equal(p.hits.jwks, 2, 'no further fetch')
  t.comment(`rotation fetches: ${p.hits.jwks} (1 at start + 1 for the new kid)`)
})

t.test('tokens without kid: a provider that replaces its only key is followed with one fetch; forgeries cannot hammer it', async (t) => {
  const k1 = providerKey('P-256', 'k1')
  const k2 = providerKey('P-256', 'k2')
  const attacker = providerKey('P-256', 'x')
  const p = await provider(t, [k1])
  const { up, gw } = await setup(t, [{ provider: p, cooldown: '30s', cacheTtl: '10m' }])
  const noKid = (key: typeof k1) => idpToken(key, idpClaims(p.issuer, 'api'), { kid: undefined })
  t.equal((await call(gw, noKid(k1))).status, 200, 'the only ES256 key verifies a token without kid')
  t.equal(p.hits.jwks, 1, 'no fetch for it')

  // The provider rotates: k1 is gone, k2 is its only key now.
  p.keys.splice(0, p.keys.length, k2.jwk)
  const rotated = await call(gw, noKid(k2))
  t.equal(rotated.status, 200, 'a token of the new key is accepted on first use')
  t.equal(p.hits.jwks, 2, 'after exactly one extra fetch')
  t.equal((await call(gw, noKid(k2))).status, 200)
  t.equal(p.hits.jwks, 2, 'and none after that')
  const old = await call(gw, noKid(k1))
  t.same([old.status, old.code], [401, 'JOTGATE_TOKEN_SIGNATURE'], 'the withdrawn key no longer verifies')

  const seen = up.seen.length
  const forged = await Promise.all(Array.from({ length: 50 }, () => call(gw, noKid(attacker))))
  t.same([...new Set(forged.map((r) => `${r.status} ${r.code}`))], ['401 JOTGATE_TOKEN_SIGNATURE'], '50 forged tokens without kid: 401')
  t.equal(p.hits.jwks, 2, 'within the cooldown they cause no fetch at all')
  t.equal(up.seen.length, seen, 'and never reach the upstream')
  const otherAlg = await call(gw, idpToken(providerKey('P-384', 'y'), idpClaims(p.issuer, 'api'), { kid: undefined }))
  t.same([otherAlg.status, otherAlg.code], [401, 'JOTGATE_TOKEN_KEY_UNKNOWN'], 'an alg the provider has no key for: no key')
  t.equal(p.hits.jwks, 2, 'still within the cooldown: no fetch')
})

t.test('a flood of unknown kids cannot hammer the provider', async (t) => {
  const good = providerKey('P-256', 'good')
  const attacker = providerKey('P-256', 'x')
  const p = await provider(t, [good])
  const { up, gw } = await setup(t, [{ provider: p, cooldown: '30s' }])
  const before = p.hits.jwks
  const flood = (n: number) => Promise.all(Array.from({ length: n }, (_, i) =>
    call(gw, idpToken({ ...attacker, kid: `random-${i}-${Math.random().toString(36).slice(2)}` }, idpClaims(p.issuer, 'api')))))

  const first = await flood(50)
  t.same([...new Set(first.map((r) => r.status))], [401], 'all 50 refused with 401')
  t.same([...new Set(first.map((r) => r.code))], ['JOTGATE_TOKEN_KEY_UNKNOWN'], 'all JOTGATE_TOKEN_KEY_UNKNOWN')
  const afterFirst = p.hits.jwks - before
  t.ok(afterFirst >= 0 && afterFirst <= 2, `50 concurrent unknown kids: ${afterFirst} fetch(es)`)

  const second = await flood(50)
  t.same([...new Set(second.map((r) => r.code))], ['JOTGATE_TOKEN_KEY_UNKNOWN'])
  t.equal(p.hits.jwks - before, afterFirst, 'a second flood within the cooldown: no fetch at all')
  t.equal((await call(gw, idpToken(good, idpClaims(p.issuer, 'api')))).status, 200, 'good tokens still served')
  t.equal(up.seen.length, 1, 'the upstream saw only the good token')
  t.comment(`flood of 100 unknown kids: ${p.hits.jwks - before} fetch(es) beyond the start fetch`)
})

t.test('provider down at start: readiness names the issuer, tokens get 503, service resumes once it answers', async (t) => {
  const key = providerKey('P-256', 'k')
  const p = await provider(t, [key])
  p.down = 'close'
  const { up, gw } = await setup(t, [{ provider: p, cooldown: '1s' }], true)
  t.ok(p.hits.jwks >= 1, 'a fetch was tried at start')

  const ready = await readyz(gw)
  t.equal(ready.status, 503, 'not ready')
  t.ok(ready.reasons.some((r) => r.includes(p.issuer)), 'the reason names the issuer')
  const res = await call(gw, idpToken(key, idpClaims(p.issuer, 'api')))
  t.equal(res.status, 503)
  t.equal(res.code, 'JOTGATE_KEYS_UNAVAILABLE', 'source unreachable, no cached key: 503')
  const noKid = await call(gw, idpToken(key, idpClaims(p.issuer, 'api'), { kid: undefined }))
  t.equal(noKid.status, 503, 'a token without kid: 503 as well')
  t.equal(noKid.code, 'JOTGATE_KEYS_UNAVAILABLE')
  t.equal(up.seen.length, 0, 'nothing reached the upstream')

  p.down = false
  const took = await until(async () => (await call(gw, idpToken(key, idpClaims(p.issuer, 'api')))).status === 200, 5000, 200)
  t.ok(took >= 0, `tokens accepted once the provider answers (after ${took} ms)`)
  t.equal((await readyz(gw)).status, 200, 'ready')
})

t.test('provider down later: cached keys serve until maxStale, then 503; service resumes when it is back', async (t) => {
  const key = providerKey('P-256', 'k')
  const p = await provider(t, [key])
  const started = Date.now()
  const { up, gw } = await setup(t, [{ provider: p, cacheTtl: '1s', maxStale: '4s', cooldown: '1s' }], true)
  const early = idpToken(key, idpClaims(p.issuer, 'api'))
  t.equal((await call(gw, early)).status, 200)
  p.down = '503'

  const failedRefresh = await until(async () => p.hits.jwks >= 2, 2500, 50)
  t.ok(failedRefresh >= 0, 'a background refresh met the outage')
  t.ok(Date.now() - started < 3500, 'still within maxStale')
  t.equal((await call(gw, idpToken(key, idpClaims(p.issuer, 'api')))).status, 200, 'a new token verifies with the cached key')
  t.equal((await readyz(gw)).status, 200, 'still ready while cached keys are usable')
  const unknown = await call(gw, idpToken({ ...key, kid: 'unknown' }, idpClaims(p.issuer, 'api')))
  t.equal(unknown.status, 503, 'an unknown kid while the source is down: 503, not 401')
  t.equal(unknown.code, 'JOTGATE_KEYS_UNAVAILABLE')

  await sleep(Math.max(0, started + 4600 - Date.now()))
  const stale = await call(gw, idpToken(key, idpClaims(p.issuer, 'api')))
  t.equal(stale.status, 503, 'after maxStale: 503')
  t.equal(stale.code, 'JOTGATE_KEYS_UNAVAILABLE')
  const ready = await readyz(gw)
  t.equal(ready.status, 503, 'not ready once no key is usable')
  t.ok(ready.reasons.some((r) => r.includes(p.issuer)), 'the reason names the issuer')
  t.equal(up.seen.length, 2, 'the upstream saw only the tokens verified with usable keys')

  p.down = false
  const took = await until(async () => (await call(gw, idpToken(key, idpClaims(p.issuer, 'api')))).status === 200, 5000, 200)
  t.ok(took >= 0, `service resumes when the provider is back (after ${took} ms)`)
})

t.test('a token verified before the outage is refused too once keys are stale past maxStale', async (t) => {
  const key = providerKey('P-256', 'k')
  const p = await provider(t, [key])
  const { up, gw } = await setup(t, [{ provider: p, cacheTtl: '1s', maxStale: '2s', cooldown: '1s' }])
  const token = idpToken(key, idpClaims(p.issuer, 'api'))
  t.equal((await call(gw, token)).status, 200)
  p.down = '503'
  await sleep(2600)
  const res = await call(gw, token)
  t.equal(res.status, 503, 'the same token, keys stale: 503')
  t.equal(up.seen.length, 1)
})

t.test('a slow provider beyond fetchTimeout counts as down', async (t) => {
  const key = providerKey('P-256', 'k')
  const p = await provider(t, [key])
  p.slowMs = 3000
  const { gw, startMs } = await setup(t, [{ provider: p, fetchTimeout: '300ms', cooldown: '500ms' }], true)
  t.ok(startMs < 2500, `start gave up after the fetch timeout (${startMs} ms)`)
  t.equal((await readyz(gw)).status, 503, 'not ready')
  const begin = Date.now()
  const res = await call(gw, idpToken(key, idpClaims(p.issuer, 'api')))
  t.equal(res.status, 503)
  t.equal(res.code, 'JOTGATE_KEYS_UNAVAILABLE')
  t.ok(Date.now() - begin < 2500, `answered without waiting for the slow provider (${Date.now() - begin} ms)`)

  p.slowMs = 0
  const took = await until(async () => (await call(gw, idpToken(key, idpClaims(p.issuer, 'api')))).status === 200, 4000, 200)
  t.ok(took >= 0, `accepted once the provider is fast again (${took} ms)`)

  // Slow again with keys cached: known kids unaffected, unknown kids 503 within the timeout.
  p.slowMs = 3000
  await sleep(600)
  t.equal((await call(gw, idpToken(key, idpClaims(p.issuer, 'api')))).status, 200, 'cached key still serves')
  const t0 = Date.now()
  const unknown = await call(gw, idpToken({ ...key, kid: 'new' }, idpClaims(p.issuer, 'api')))
  t.equal(unknown.status, 503)
  t.equal(unknown.code, 'JOTGATE_KEYS_UNAVAILABLE')
  t.ok(Date.now() - t0 < 2500, `unknown kid with a slow provider: refused after the timeout (${Date.now() - t0} ms)`)
  p.slowMs = 0
})

t.test('a JWKS that fails to parse never replaces the good cached one', async (t) => {
  const good = providerKey('P-256', 'good')
  const next = providerKey('P-256', 'next')
  const p = await provider(t, [good])
  const { gw } = await setup(t, [{ provider: p, cooldown: '300ms' }], true)
  t.equal((await call(gw, idpToken(good, idpClaims(p.issuer, 'api')))).status, 200)

  const variants: Array<[string, () => void]> = [
    ['invalid JSON', () => { p.garbage = 'json' }],
    ['{"keys": "x"}', () => { p.garbage = 'keys' }],
    ['a JWKS with no usable key', () => { p.garbage = false; p.keys = [providerKey('RSA-1024', 'weak').jwk] }],
    ['an empty JWKS', () => { p.keys = [] }],
    ['a JWKS over 1 MiB (holding the next key)', () => { p.keys = [good.jwk, next.jwk]; p.garbage = 'huge' }]
  ]
  for (const [name, apply] of variants) {
    apply()
    await sleep(350)
    const fetches = p.hits.jwks
    // An unknown kid forces a refetch, which gets the garbage.
    const unknown = await call(gw, idpToken({ ...next, kid: `unknown-${fetches}` }, idpClaims(p.issuer, 'api')))
    t.equal(p.hits.jwks, fetches + 1, `${name}: fetched`)
    t.equal(unknown.status, 503, `${name}: an unknown kid is refused (source unusable)`)
    t.equal(unknown.code, 'JOTGATE_KEYS_UNAVAILABLE')
    t.equal((await call(gw, idpToken(good, idpClaims(p.issuer, 'api')))).status, 200, `${name}: the cached good key still verifies`)
    t.equal((await readyz(gw)).status, 200, `${name}: still ready`)
  }

  p.keys = [good.jwk, next.jwk]
  p.garbage = false
  await sleep(350)
  t.equal((await call(gw, idpToken(next, idpClaims(p.issuer, 'api')))).status, 200, 'a good JWKS again: the new key is picked up')
})

t.test('jku, x5u, jwk and x5c headers are never fetched or trusted', async (t) => {
  const good = providerKey('P-256', 'good')
  const attacker = providerKey('P-256', 'attacker')
  const p = await provider(t, [good])
  const spy = await provider(t, [attacker])
  const { up, gw } = await setup(t, [{ provider: p, cooldown: '30s' }])
  const x5c = [generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }).toString('base64')]
  const pointers = { jku: spy.jwksUri, x5u: `${spy.url}/cert.pem`, jwk: attacker.jwk, x5c }
  const payload = () => idpClaims(p.issuer, 'api')

  const cases: Array<[string, string, string]> = [
    ['attacker kid, jku at the spy', idpToken(attacker, payload(), { jku: spy.jwksUri }), 'JOTGATE_TOKEN_KEY_UNKNOWN'],
    ['attacker kid, x5u at the spy', idpToken(attacker, payload(), { x5u: `${spy.url}/cert.pem` }), 'JOTGATE_TOKEN_KEY_UNKNOWN'],
    ['attacker kid, every pointer', idpToken(attacker, payload(), pointers), 'JOTGATE_TOKEN_KEY_UNKNOWN'],
    ['good kid, attacker signature, embedded jwk', idpToken({ ...attacker, kid: 'good' }, payload(), pointers), 'JOTGATE_TOKEN_SIGNATURE'],
    ['no kid, attacker signature, embedded jwk', idpToken(attacker, payload(), { kid: undefined, jwk: attacker.jwk, jku: spy.jwksUri }), 'JOTGATE_TOKEN_SIGNATURE']
  ]
  for (const [name, token, code] of cases) {
    const res = await call(gw, token)
    t.equal(res.status, 401, `${name}: 401`)
    t.equal(res.code, code, `${name}: ${code}`)
  }
  await sleep(300)
  t.equal(spy.hits.total, 0, 'the spy server was never contacted')
  t.equal(up.seen.length, 0, 'the upstream saw nothing')
  t.ok(p.hits.jwks <= 2, `the configured provider: at most one refetch (${p.hits.jwks})`)
  t.notOk(p.paths.some((path) => path.includes('cert') || path.includes('attacker')), 'no token-derived path was requested')
})

t.test('an iss that is not configured is refused before any key lookup or fetch', async (t) => {
  const good = providerKey('P-256', 'good')
  const p = await provider(t, [good])
  const spy = await provider(t, [good])
  const { up, gw } = await setup(t, [{ provider: p, cooldown: '500ms' }])
  await sleep(600)
  const before = { ...p.hits }
  const variants: Array<[string, Record<string, unknown>]> = [
    ['an unknown issuer URL (the spy)', { iss: spy.issuer }],
    ['the issuer with a trailing slash', { iss: `${p.issuer}/` }],
    ['the issuer in upper case', { iss: p.issuer.toUpperCase() }],
    ['the issuer with a path', { iss: `${p.issuer}/tenant` }],
    ['no iss', { iss: undefined }]
  ]
  for (const [name, overrides] of variants) {
    for (const kid of ['good', 'unknown-kid']) {
      const res = await call(gw, idpToken({ ...good, kid }, idpClaims(p.issuer, 'api', overrides)))
      t.equal(res.status, 401, `${name}, kid ${kid}: 401`)
      t.equal(res.code, 'JOTGATE_TOKEN_ISSUER', `${name}, kid ${kid}: issuer refused`)
    }
  }
  await sleep(300)
  t.same(p.hits, before, 'the configured provider saw no request caused by these tokens')
  t.equal(spy.hits.total, 0, 'the spy issuer was never contacted (no discovery from iss)')
  t.equal(up.seen.length, 0, 'the upstream saw nothing')
})

t.test('a discovery document naming another issuer is not trusted', async (t) => {
  const key = providerKey('P-256', 'k')
  const p = await provider(t, [key])
  p.discoveryIssuer = 'https://evil.example'
  const { up, gw } = await setup(t, [{ provider: p, discovery: true, cooldown: '30s' }], true)
  t.equal(p.hits.discovery, 1, 'discovery fetched')
  t.equal(p.hits.jwks, 0, 'its jwks_uri was not followed')
  t.equal((await readyz(gw)).status, 503, 'not ready')
  const res = await call(gw, idpToken(key, idpClaims(p.issuer, 'api')))
  t.equal(res.status, 503)
  t.equal(res.code, 'JOTGATE_KEYS_UNAVAILABLE')
  t.equal(up.seen.length, 0)
})

t.test('a reload keeps the cached keys of an unchanged issuer and does not wait for its provider', async (t) => {
  const key = providerKey('P-256', 'k')
  const p = await provider(t, [key])
  const issuer: IssuerOptions = { provider: p, cooldown: '500ms', fetchTimeout: '4s' }
  const { up, gw } = await setup(t, [issuer], true)
  const reload = async (issuers: IssuerOptions[]): Promise<number> => {
    const begin = Date.now()
    await gw.gateway.reload(loadConfigObject(baseConfig('jwks', gatewayConfig(issuers, up)), keyDir))
    return Date.now() - begin
  }
  t.equal((await call(gw, idpToken(key, idpClaims(p.issuer, 'api')))).status, 200)

  p.down = '503'
  const downMs = await reload([issuer])
  t.ok(downMs < 1000, `reload with the provider down took ${downMs} ms`)
  t.equal((await call(gw, idpToken(key, idpClaims(p.issuer, 'api')))).status, 200, 'provider down at reload: cached keys keep serving')
  t.equal((await readyz(gw)).status, 200, 'still ready')
  await sleep(600)
  const unknown = await call(gw, idpToken({ ...key, kid: 'other' }, idpClaims(p.issuer, 'api')))
  t.equal(unknown.code, 'JOTGATE_KEYS_UNAVAILABLE', 'an unknown kid while the provider is down: 503')

  p.down = false
  p.slowMs = 3000
  const slowMs = await reload([issuer])
  t.ok(slowMs < 2000, `reload with a slow provider did not wait for it (${slowMs} ms)`)
  t.equal((await call(gw, idpToken(key, idpClaims(p.issuer, 'api')))).status, 200, 'served at once after the reload')
  p.slowMs = 0

  // Another issuer (a new key source) is fetched before the reload completes.
  const k2 = providerKey('P-256', 'k2')
  const p2 = await provider(t, [k2])
  await reload([issuer, { provider: p2 }])
  t.equal(p2.hits.jwks, 1, 'a new source is fetched during the reload')
  t.equal((await call(gw, idpToken(k2, idpClaims(p2.issuer, 'api')))).status, 200, 'and serves right after it')
  t.equal((await call(gw, idpToken(key, idpClaims(p.issuer, 'api')))).status, 200, 'the unchanged one too')

  await reload([{ provider: p2 }])
  const removed = await call(gw, idpToken(key, idpClaims(p.issuer, 'api')))
  t.equal(removed.code, 'JOTGATE_TOKEN_ISSUER', 'an issuer removed by a reload is refused')
})

t.test('a source closed while its background fetch is in flight stops fetching', async (t) => {
  const key = providerKey('P-256', 'k')
  const p = await provider(t, [key])
  const outcomes: string[] = []
  const remote = createRemoteIssuer({
    issuer: p.issuer, jwksUri: p.jwksUri, audience: ['api'], algorithms: ['ES256'],
    cacheTtl: '1s', maxStale: '1h', cooldown: '1s', fetchTimeout: '2s'
  }, { log: captureLogger([]) as never, onFetch: (_issuer, outcome) => outcomes.push(outcome) })
  t.teardown(() => remote.close())
  await remote.start()
  t.same(outcomes, ['ok'])
  t.equal(remote.problem(), undefined, 'usable after start')
  p.slowMs = 400
  t.ok(await until(async () => p.hits.jwks >= 2, 2500, 20) >= 0, 'a background refresh is in flight')
  remote.close()
  // Unclosed, the finished fetch would re-arm a 1 s timer: wait past it.
  await sleep(1800)
  t.equal(p.hits.jwks, 2, 'no refresh after close (the in-flight one does not re-arm the timer)')
})
