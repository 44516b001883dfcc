/**
 * GET /.well-known/jwks.json (issue 3, CONTRACT section 4): the public keys,
 * verify-only ones included; never a private member or an HMAC secret; the
 * tokens login issues verify with the published key of their kid.
 */
import t from 'tap'
import { createPublicKey, verify } from 'node:crypto'
import { KEYS } from '../helpers/zoo.js'
import { startGateway } from '../helpers/gateway.js'
import { authGateway, usersFile, call, login } from './auth-kit.js'

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']

t.test('the JWKS of a gateway that issues tokens', async (t) => {
  const file = await usersFile([{ username: 'alice', password: 'alice-pw', hash: '2b' }])
  const gw = await authGateway({ name: 'auth-jwks', auth: { users: { file }, rateLimit: { max: 1000 } } })
  t.teardown(() => gw.close())

  const res = await call(gw.url, '/.well-known/jwks.json', undefined, { method: 'GET' })
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^application\/json/)
  const keys = (res.body as { keys: Record<string, string>[] }).keys
  const asymmetric = Object.values(KEYS).filter((k) => !k.alg.startsWith('HS')).map((k) => k.kid)
  t.same(keys.map((k) => k.kid).sort(), [...asymmetric].sort(), 'every asymmetric key: the signing one and the verify-only ones')
  for (const jwk of keys) {
    for (const member of PRIVATE_MEMBERS) t.notOk(member in jwk, `${jwk.kid}: no ${member}`)
    t.not(jwk.kty, 'oct', `${jwk.kid}: not a symmetric key`)
    t.equal(jwk.use, 'sig')
    t.equal(jwk.alg, KEYS[jwk.kid!]!.alg)
    // The published key is the public half of the zoo key.
    const published = createPublicKey({ key: jwk as never, format: 'jwk' })
    t.equal(published.export({ type: 'spki', format: 'pem' }), KEYS[jwk.kid!]!.publicPem, `${jwk.kid}: the right public key`)
  }
  const text = res.text
  for (const k of Object.values(KEYS).filter((k) => k.alg.startsWith('HS'))) {
    t.notOk(text.includes(k.kid), `${k.kid} not listed`)
    t.notOk(text.includes((k.signKey as Buffer).toString('base64url')), `${k.kid} secret not published`)
    t.notOk(text.includes((k.signKey as Buffer).toString('base64')), `${k.kid} secret not published (base64)`)
  }

  // A token from login verifies with the published key named by its kid.
  const pair = await login(gw.url, 'alice', 'alice-pw')
  const [h, p, s] = pair.access_token.split('.') as [string, string, string]
  const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as { kid: string, alg: string }
  const jwk = keys.find((k) => k.kid === header.kid)
  t.ok(jwk, 'the token kid is published')
  const ok = verify('sha256', Buffer.from(`${h}.${p}`), { key: createPublicKey({ key: jwk as never, format: 'jwk' }), dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'))
  t.ok(ok, 'signature verifies with the JWKS key')

  for (const method of ['POST', 'DELETE']) {
    const other = await call(gw.url, '/.well-known/jwks.json', undefined, { method })
    t.not(other.status, 200, `${method} is not served the key set`)
    t.ok(other.status < 500)
  }
})

t.test('the JWKS without auth configured, and with only HMAC keys', async (t) => {
  const verifyOnly = await startGateway({ name: 'auth-jwks-noauth', config: { tokens: { issuer: 'https://jotgate.test', keys: [KEYS.rs256!.config, KEYS.eddsa!.config, KEYS.hs256!.config] } } })
  t.teardown(() => verifyOnly.close())
  const res = await call(verifyOnly.url, '/.well-known/jwks.json', undefined, { method: 'GET' })
  t.equal(res.status, 200)
  t.same((res.body as { keys: { kid: string }[] }).keys.map((k) => k.kid), ['rs256', 'eddsa'])

  const hmacOnly = await startGateway({ name: 'auth-jwks-hmac', config: { tokens: { issuer: 'https://jotgate.test', keys: [KEYS.hs256!.config] } } })
  t.teardown(() => hmacOnly.close())
  const none = await call(hmacOnly.url, '/.well-known/jwks.json', undefined, { method: 'GET' })
  t.equal(none.status, 404, 'no asymmetric key: nothing to publish')
  t.equal(none.body?.code, 'JOTGATE_ROUTE_NOT_FOUND')
  t.notOk(none.text.includes((KEYS.hs256!.signKey as Buffer).toString('base64url')))
})
