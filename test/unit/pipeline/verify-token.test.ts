import t from 'tap'
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto'
import { isGatewayError } from '../../../src/errors.js'
import { createDoorkeeper, createTokenVerifier, type VerificationCounts } from '../../../src/pipeline/verify-token.js'
import { createStaticIssuer, createVerifyKey, type IssuerKeys, type KeyTable, type VerifyKey } from '../../../src/keys/key-table.js'
import { AUDIENCE, ISSUER, KEYS, claims, mint, tamper } from '../../helpers/zoo.js'

/** A real key whose signature checks are counted. */
function counted (key: VerifyKey): VerifyKey & { checks: number } {
  const out = { ...key, checks: 0 }
  out.verifySignature = (input, signature) => {
    out.checks++
    return key.verifySignature(input, signature)
  }
  return out
}

function setup (cacheSize = 100, now?: () => number, counts?: VerificationCounts) {
  const es = counted(createVerifyKey('es256', 'ES256', createPublicKey(KEYS.es256!.signKey as KeyObject)))
  const hs = counted(createVerifyKey('hs256', 'HS256', createSecretKey(KEYS.hs256!.signKey as Buffer)))
  const keys: KeyTable = { issuers: new Map([[ISSUER, createStaticIssuer(ISSUER, [AUDIENCE], [es, hs])]]), remotes: [], local: [], signing: undefined }
  const verify = createTokenVerifier({ keys, clockTolerance: 30, maxLifetime: 86400, maxTokenBytes: 8192, cacheSize, ...(now === undefined ? {} : { now }), ...(counts === undefined ? {} : { counts }) })
  return { es, hs, verify }
}

t.test('a public-key signature is checked off the main thread, once for requests that carry the same new token meanwhile', async (t) => {
  const { es, verify } = setup()
  const token = mint({ key: KEYS.es256!, payload: claims({ sub: 'alice' }) })
  const pending = Array.from({ length: 5 }, () => verify(token))
  for (const p of pending) t.ok(p instanceof Promise, 'a promise while the check runs')
  t.equal(es.checks, 1, 'one check for five requests')
  const results = await Promise.all(pending)
  t.equal(new Set(results).size, 1, 'all get the same verified token')
  t.equal(results[0]!.claims.sub, 'alice')
  // The cache has room: the token went in with its first verification.
  const again = verify(token)
  t.notOk(again instanceof Promise, 'the next request is a cache hit, answered at once')
  t.equal(again, results[0])
  t.equal(es.checks, 1)
})

t.test('while the cache has room a token is cached at once; once it is full, a new token only from its second use', async (t) => {
  const { hs, verify } = setup(10)
  const regulars = Array.from({ length: 10 }, (_, i) => mint({ key: KEYS.hs256!, payload: claims({ sub: `regular-${i}` }) }))
  const answers = regulars.map((token) => verify(token))
  t.equal(hs.checks, 10, 'ten tokens, ten checks, and the cache is full')
  t.same(regulars.map((token) => verify(token)), answers, 'each back once: the cached answers')
  t.equal(hs.checks, 10, 'no more checks')
  // Full: a token seen for the first time is checked and not kept, so a
  // stream of one-time tokens leaves the tokens in use where they are.
  const once = Array.from({ length: 50 }, (_, i) => mint({ key: KEYS.hs256!, payload: claims({ sub: `once-${i}` }) }))
  for (const token of once) verify(token)
  t.equal(hs.checks, 60, 'fifty one-time tokens, fifty checks')
  t.same(regulars.map((token) => verify(token)), answers, 'the ten in use are still cached')
  t.equal(hs.checks, 60)
  const reused = mint({ key: KEYS.hs256!, payload: claims({ sub: 'reused' }) })
  const first = verify(reused)
  const second = verify(reused)
  t.equal(hs.checks, 62, 'a new token in use: its first two uses are checked')
  t.not(second, first, 'each answer its own')
  t.equal(verify(reused), second, 'the third is the cached answer of the second')
  t.equal(hs.checks, 62, 'no more checks')
  // It took the place of the least recently used token.
  verify(regulars[0]!)
  t.equal(hs.checks, 63, 'the least recently used regular was evicted and is checked again')
  // The one-time tokens, back once, are second sights: checked and let in.
  for (const token of once.slice(0, 5)) verify(token)
  t.equal(hs.checks, 68)
  for (const token of once.slice(0, 5)) verify(token)
  t.equal(hs.checks, 68, 'and cache hits from then on')
})

t.test('verifications are counted: a new verification is a miss, the cache and a check in flight are hits', async (t) => {
  const counts = { hit: 0, miss: 0 }
  const { es, verify } = setup(100, undefined, counts)
  const token = mint({ key: KEYS.es256!, payload: claims({ sub: 'alice' }) })
  await Promise.all([verify(token), verify(token), verify(token)])
  t.same(counts, { hit: 2, miss: 1 }, 'one check, two requests sharing it')
  verify(token)
  t.same(counts, { hit: 3, miss: 1 }, 'a cache hit')
  t.throws(() => verify('not.a.token'), { code: 'JOTGATE_TOKEN_MALFORMED' })
  t.same(counts, { hit: 3, miss: 2 }, 'a refusal before any check is a miss too')
  t.equal(es.checks, 1)
})

t.test('an entry past its expiry gives its place back', async (t) => {
  let clock = Date.now()
  const { hs, verify } = setup(1, () => clock)
  const short = mint({ key: KEYS.hs256!, payload: claims({ sub: 'short', exp: Math.floor(clock / 1000) + 60 }) })
  verify(short)
  verify(short)
  t.equal(hs.checks, 1, 'cached on its first use, a hit on its second')
  clock += 120_000
  t.throws(() => verify(short), { code: 'JOTGATE_TOKEN_EXPIRED' }, 'refused once past exp + tolerance')
  const next = mint({ key: KEYS.hs256!, payload: claims({ sub: 'next' }) })
  const answer = verify(next)
  t.equal(verify(next), answer, 'the next token took the freed place at once: its second use is a hit')
  t.equal(hs.checks, 3, 'the expired token checked again (and refused), the next one once')
})

t.test('createDoorkeeper: true for what it saw since its last reset, with no allocation per call', async (t) => {
  const admit = createDoorkeeper(1 << 12)
  const tokens = Array.from({ length: 400 }, (_, i) => `header.payload.${i.toString(36).padStart(8, '0')}signature-end-${i}`)
  const firsts = tokens.filter((tok) => admit(tok)).length
  // At most an eighth of the bits may be set: 512 of 4096, so some of 400
  // may already find their bit set (another token's): few.
  t.ok(firsts < 40, `first sights let in: ${firsts} of 400`)
  t.equal(tokens.filter((tok) => admit(tok)).length, 400, 'every token seen once is let in on its second sight')
  // Fill past an eighth of the bits: it resets and forgets.
  const more = Array.from({ length: 2000 }, (_, i) => `h.p.more-${i}-tail`)
  for (const tok of more) admit(tok)
  const remembered = tokens.filter((tok) => admit(tok)).length
  t.ok(remembered < 400, `after a reset, ${remembered} of the first 400 are still let in (only those hashed to a bit set since)`)
  t.throws(() => createDoorkeeper(1000), RangeError, 'bits must be a power of two')
})

t.test('a forged token in flight refuses every request that shares it, and is checked again later', async (t) => {
  const { es, verify } = setup()
  const forged = tamper(mint({ key: KEYS.es256!, payload: claims({ sub: 'alice' }) }))
  const codes = await Promise.all(Array.from({ length: 3 }, async () => {
    try {
      await verify(forged)
      return 'accepted'
    } catch (err) {
      return isGatewayError(err) ? err.code : String(err)
    }
  }))
  t.same(codes, ['JOTGATE_TOKEN_SIGNATURE', 'JOTGATE_TOKEN_SIGNATURE', 'JOTGATE_TOKEN_SIGNATURE'])
  t.equal(es.checks, 1)
  await t.rejects(Promise.resolve().then(() => verify(forged)), { code: 'JOTGATE_TOKEN_SIGNATURE' }, 'a refusal is not remembered')
  t.equal(es.checks, 2, 'checked again')
})

t.test('claims are checked after the signature: an expired token with a bad signature is a signature refusal', async (t) => {
  const { verify } = setup()
  const expired = tamper(mint({ key: KEYS.es256!, payload: claims({ exp: 1_000_000, iat: 999_000 }) }))
  await t.rejects(Promise.resolve().then(() => verify(expired)), { code: 'JOTGATE_TOKEN_SIGNATURE' })
  const honest = mint({ key: KEYS.es256!, payload: claims({ exp: 1_000_000, iat: 999_000 }) })
  await t.rejects(Promise.resolve().then(() => verify(honest)), { code: 'JOTGATE_TOKEN_EXPIRED' })
})

t.test('an HMAC is checked at once', async (t) => {
  const { hs, verify } = setup()
  const token = mint({ key: KEYS.hs256!, payload: claims({ sub: 'bob' }) })
  const result = verify(token)
  t.notOk(result instanceof Promise)
  t.equal(hs.checks, 1)
  t.throws(() => verify(tamper(token)), { code: 'JOTGATE_TOKEN_SIGNATURE' })
})

t.test('requests carrying one token of a rotated key wait for one refetch, not one each', async (t) => {
  // An issuer whose key source learns the token's kid only on a refetch.
  const es = createVerifyKey('new', 'ES256', createPublicKey(KEYS.es256!.signKey as KeyObject))
  let known: VerifyKey | undefined
  let refetches = 0
  const issuer: IssuerKeys = {
    ...createStaticIssuer(ISSUER, [AUDIENCE], []),
    byKid: (kid) => kid === 'new' ? known : undefined,
    refresh: async (kid) => {
      refetches++
      await new Promise((resolve) => setTimeout(resolve, 20))
      known = es
      return kid === 'new' ? es : undefined
    }
  }
  const keys: KeyTable = { issuers: new Map([[ISSUER, issuer]]), remotes: [], local: [], signing: undefined }
  const verify = createTokenVerifier({ keys, clockTolerance: 30, maxLifetime: 86400, maxTokenBytes: 8192, cacheSize: 100 })
  const token = mint({ key: KEYS.es256!, header: { kid: 'new' }, payload: claims({ sub: 'carol' }) })
  const results = await Promise.all([verify(token), verify(token), verify(token)])
  t.equal(refetches, 1)
  t.same(results.map((r) => r.claims.sub), ['carol', 'carol', 'carol'])
})
