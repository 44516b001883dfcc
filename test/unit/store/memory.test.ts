/**
 * The memory store honours the same contract as the Redis store
 * (test/integration/redis-store.test.ts), with an injected clock: time is
 * advanced, never slept.
 */
import t from 'tap'
import { createMemoryStore } from '../../../src/store/memory.js'
import type { RefreshRecord, Store } from '../../../src/store/types.js'

const T0 = 1_700_000_000_000

function clocked (t: { teardown: (fn: () => unknown) => void }): { store: Store, advance: (ms: number) => void, sec: () => number } {
  let ms = T0
  const store = createMemoryStore(() => ms)
  t.teardown(() => store.close())
  return { store, advance: (d) => { ms += d }, sec: () => Math.floor(ms / 1000) }
}

const record = (over: Partial<RefreshRecord> = {}): RefreshRecord =>
  ({ sub: 'alice', sid: 's1', claims: { roles: ['user'] }, issuedAt: T0 / 1000, expiresAt: T0 / 1000 + 600, ...over })

t.test('ready, healthy, kind', async (t) => {
  const { store } = clocked(t)
  t.equal(store.kind, 'memory')
  await t.resolves(store.ready(10))
  t.equal(store.isHealthy(), true)
})

t.test('isRevoked by jti, sid and sub cut-off', async (t) => {
  const { store, sec } = clocked(t)
  const t0 = sec()
  t.equal(await store.isRevoked({ jti: 'j1', sid: 's1', sub: 'alice', iat: t0 }), false, 'nothing revoked yet')
  t.equal(await store.isRevoked({}), false)

  await store.revokeJti('j1', t0 + 60)
  t.equal(await store.isRevoked({ jti: 'j1' }), true, 'jti revoked')
  t.equal(await store.isRevoked({ jti: 'j2', sid: 's9', sub: 'bob', iat: t0 }), false, 'another jti is not')

  await store.revokeSid('s1', 60)
  t.equal(await store.isRevoked({ jti: 'j3', sid: 's1' }), true, 'sid revoked')
  t.equal(await store.isRevoked({ jti: 'j3', sid: 's2' }), false)

  await store.revokeSub('alice', t0, 60)
  t.equal(await store.subRevokedAt('alice'), t0)
  t.equal(await store.subRevokedAt('nobody'), undefined)
  t.equal(await store.isRevoked({ sub: 'alice', iat: t0 - 100 }), true, 'iat before the cut-off')
  t.equal(await store.isRevoked({ sub: 'alice', iat: t0 }), true, 'iat at the cut-off')
  t.equal(await store.isRevoked({ sub: 'alice', iat: t0 + 0.5 }), true, 'a fractional iat in the cut-off second')
  t.equal(await store.isRevoked({ sub: 'alice', iat: t0 + 1 }), false, 'iat after the cut-off')
  t.equal(await store.isRevoked({ sub: 'alice' }), true, 'no iat under a revoked sub: fail closed')
  t.equal(await store.isRevoked({ sub: 'bob' }), false)
  t.equal(await store.isRevoked({ jti: 'j4', sid: 's4', sub: 'alice', iat: t0 + 1 }), false)
  t.equal(await store.isRevoked({ jti: 'j1', sid: 's4', sub: 'alice', iat: t0 + 1 }), true, 'any one covering is enough')
})

t.test('revokedLocally gives isRevoked\'s answer synchronously', async (t) => {
  const { store, sec } = clocked(t)
  const t0 = sec()
  await store.revokeJti('j1', t0 + 60)
  await store.revokeSub('alice', t0, 60)
  const subjects = [{ jti: 'j1' }, { jti: 'j2' }, { sub: 'alice', iat: t0 }, { sub: 'alice', iat: t0 + 1 }, { sub: 'alice' }, {}]
  for (const subject of subjects) {
    const local = store.revokedLocally!(subject)
    t.type(local, 'boolean', `${JSON.stringify(subject)}: answered here`)
    t.equal(local, await store.isRevoked(subject), `${JSON.stringify(subject)}: same answer`)
  }
})

t.test('revokeSub never moves the cut-off back and never shrinks the TTL', async (t) => {
  const { store, sec, advance } = clocked(t)
  const t0 = sec()
  await store.revokeSub('carol', t0, 1000)
  await store.revokeSub('carol', t0 - 50, 5000)
  t.equal(await store.subRevokedAt('carol'), t0, 'an earlier cut-off does not replace a later one')
  await store.revokeSub('carol', t0 + 10, 10)
  t.equal(await store.subRevokedAt('carol'), t0 + 10, 'a later cut-off replaces an earlier one')
  await store.revokeSub('carol', t0 + 5, 10)
  t.equal(await store.subRevokedAt('carol'), t0 + 10)
  advance(4000 * 1000)
  t.equal(await store.subRevokedAt('carol'), t0 + 10, 'still live: the 10 s ttl did not shrink the 5000 s one')
  t.equal(await store.isRevoked({ sub: 'carol', iat: t0 + 10 }), true)
  advance(1001 * 1000)
  t.equal(await store.subRevokedAt('carol'), undefined, 'gone after the longest ttl')
  t.equal(await store.isRevoked({ sub: 'carol', iat: t0 }), false)

  await store.revokeSub('dave', t0, 10)
  advance(11_000)
  await store.revokeSub('dave', t0 - 100, 10)
  t.equal(await store.subRevokedAt('dave'), t0 - 100, 'an expired cut-off does not linger into a new one')
})

t.test('entries expire at their lifetime', async (t) => {
  const { store, sec, advance } = clocked(t)
  const t0 = sec()
  await store.revokeJti('gone-soon', t0 + 2)
  await store.revokeJti('already-expired', t0 - 100)
  await store.revokeSid('sid-soon', 2)
  await store.revokeSub('sub-soon', t0, 2)
  await store.putRefresh('hash-soon', record({ expiresAt: t0 + 2 }))
  t.equal(await store.isRevoked({ jti: 'gone-soon' }), true)
  t.equal(await store.isRevoked({ jti: 'already-expired' }), true, 'a past exp is still kept briefly')
  t.equal(await store.isRevoked({ sid: 'sid-soon' }), true)
  advance(1900)
  t.equal(await store.isRevoked({ jti: 'gone-soon', sid: 'sid-soon', sub: 'sub-soon', iat: t0 }), true, 'live just before')
  advance(1100)
  t.equal(await store.isRevoked({ jti: 'gone-soon' }), false, 'jti entry gone at exp')
  t.equal(await store.isRevoked({ jti: 'already-expired' }), false)
  t.equal(await store.isRevoked({ sid: 'sid-soon' }), false)
  t.equal(await store.isRevoked({ sub: 'sub-soon', iat: t0 }), false)
  t.same(await store.spendRefresh('hash-soon'), { status: 'unknown' })
})

t.test('spendRefresh: ok once, then reused; unknown when missing', async (t) => {
  const { store, advance } = clocked(t)
  const rec = record({ client: 'web' })
  await store.putRefresh('h1', rec)
  t.same(await store.spendRefresh('h1'), { status: 'ok', record: rec })
  t.same(await store.spendRefresh('h1'), { status: 'reused', record: rec })
  t.same(await store.spendRefresh('nope'), { status: 'unknown' })
  advance(601_000)
  t.same(await store.spendRefresh('h1'), { status: 'unknown' }, 'gone at expiresAt')
})

t.test('concurrent spends: exactly one ok', async (t) => {
  const { store } = clocked(t)
  await store.putRefresh('race', record())
  const results = await Promise.all(Array.from({ length: 20 }, () => store.spendRefresh('race')))
  t.equal(results.filter((r) => r.status === 'ok').length, 1)
  t.equal(results.filter((r) => r.status === 'reused').length, 19)
})

t.test('hit counts within a window and resets after it', async (t) => {
  const { store, advance } = clocked(t)
  t.same(await store.hit('ip:1', 600), { count: 1, resetMs: 600 })
  advance(100)
  t.same(await store.hit('ip:1', 600), { count: 2, resetMs: 500 }, 'the window does not restart on each hit')
  t.same(await store.hit('ip:2', 600), { count: 1, resetMs: 600 }, 'keys are counted apart')
  advance(499)
  t.same(await store.hit('ip:1', 600), { count: 3, resetMs: 1 })
  advance(1)
  t.same(await store.hit('ip:1', 600), { count: 1, resetMs: 600 }, 'a new window starts from one')
})

t.test('close stops the sweep', async (t) => {
  const store = createMemoryStore()
  await t.resolves(store.close())
})
