/**
 * The token service (src/auth/sessions.ts) over the memory store: what a
 * login issues, refresh rotation and reuse detection, the refresh race,
 * logout, logout-all and the lifetimes of the revocations they record.
 */
import t, { type Test } from 'tap'
import { loadConfigObject } from '../../../src/config/load.js'
import { createKeyTable } from '../../../src/keys/key-table.js'
import { createMemoryStore } from '../../../src/store/memory.js'
import type { Store } from '../../../src/store/types.js'
import type { VerifiedToken } from '../../../src/pipeline/context.js'
import { createSessionService, mintRefreshToken, refreshHash, sidOfRefreshToken, type TokenPair } from '../../../src/auth/sessions.js'
import { randomId } from '../../../src/keys/signer.js'
import { baseConfig } from '../../helpers/gateway.js'
import { keyDir, ISSUER, AUDIENCE } from '../../helpers/zoo.js'

const decode = (token: string) => {
  const [h, p] = token.split('.') as [string, string]
  return { header: JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>, payload: JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown> }
}
const verified = (token: string): VerifiedToken => {
  const { payload } = decode(token)
  return { claims: payload, iss: payload.iss as string, kid: 'es256', exp: payload.exp as number }
}
const code = (err: unknown) => (err as { code?: string }).code

function setup (t: Test, auth: Record<string, unknown> = {}, tokens: Record<string, unknown> = {}, wrap: (s: Store) => Store = (s) => s) {
  const raw = baseConfig('unit-sessions', { store: { type: 'memory' }, auth: { delegate: { url: 'http://127.0.0.1:9/login' }, ...auth } })
  raw.tokens = { ...(raw.tokens as Record<string, unknown>), ...tokens }
  const { config } = loadConfigObject(raw, keyDir)
  const memory = createMemoryStore()
  t.teardown(() => memory.close())
  const store = wrap(memory)
  const sessions = createSessionService(config, createKeyTable(config).signing!, store)
  return { sessions, store: memory, config }
}

t.test('login: the pair, the claims, the header', async (t) => {
  const { sessions, store } = setup(t)
  const before = Math.floor(Date.now() / 1000)
  const pair = await sessions.login({ sub: 'alice', claims: { roles: ['ops'], sub: 'mallory', iss: 'x', aud: 'x', exp: 1, iat: 1, nbf: 1, jti: 'j', sid: 's', azp: 'evil' } }, undefined)
  t.same(Object.keys(pair).sort(), ['access_token', 'expires_in', 'refresh_expires_in', 'refresh_token', 'token_type'])
  t.equal(pair.token_type, 'Bearer')
  t.equal(pair.expires_in, 600)
  t.equal(pair.refresh_expires_in, 604800)
  const { header, payload } = decode(pair.access_token)
  t.same(header, { alg: 'ES256', typ: 'JWT', kid: 'es256' })
  t.equal(payload.sub, 'alice')
  t.equal(payload.iss, ISSUER)
  t.equal(payload.aud, AUDIENCE)
  t.ok((payload.iat as number) >= before)
  t.equal(payload.nbf, payload.iat)
  t.equal((payload.exp as number) - (payload.iat as number), 600)
  t.not(payload.jti, 'j')
  t.not(payload.sid, 's')
  t.notOk('azp' in payload)
  t.same(payload.roles, ['ops'])
  t.ok(Buffer.from(pair.refresh_token, 'base64url').length >= 32, 'refresh token >= 256 bits')
  t.equal(sidOfRefreshToken(pair.refresh_token), payload.sid, 'the refresh token carries its session')
  const spent = await store.spendRefresh(refreshHash(pair.refresh_token))
  t.equal(spent.status, 'ok', 'stored under its hash')
  if (spent.status === 'ok') {
    t.equal(spent.record.sid, payload.sid)
    t.equal(spent.record.expiresAt - spent.record.issuedAt, 604800)
    t.notOk(JSON.stringify(spent.record).includes(pair.refresh_token))
  }
})

t.test('clients: azp and their own lifetimes', async (t) => {
  const { sessions } = setup(t, { clients: { web: { accessTtl: '1m', refreshTtl: '2h' }, cli: {} } })
  const web = await sessions.login({ sub: 'alice', claims: {} }, 'web')
  t.equal(web.expires_in, 60)
  t.equal(web.refresh_expires_in, 7200)
  t.equal(decode(web.access_token).payload.azp, 'web')
  const next = await sessions.refresh(web.refresh_token)
  t.equal(next.expires_in, 60)
  t.equal(decode(next.access_token).payload.azp, 'web')
  const cli = await sessions.login({ sub: 'alice', claims: {} }, 'cli')
  t.equal(cli.expires_in, 600)
  t.equal(cli.refresh_expires_in, 604800)
})

t.test('refresh rotates; a spent token presented again revokes the session', async (t) => {
  const { sessions, store } = setup(t)
  const first = await sessions.login({ sub: 'bob', claims: { roles: ['user'] } }, undefined)
  const sid = decode(first.access_token).payload.sid as string
  const second = await sessions.refresh(first.refresh_token)
  t.equal(decode(second.access_token).payload.sid, sid)
  t.same(decode(second.access_token).payload.roles, ['user'])
  t.not(second.refresh_token, first.refresh_token)
  t.equal(await store.isRevoked({ sid }), false)
  await t.rejects(sessions.refresh(first.refresh_token), { code: 'JOTGATE_REFRESH_INVALID' })
  t.equal(await store.isRevoked({ sid }), true, 'session revoked')
  await t.rejects(sessions.refresh(second.refresh_token), { code: 'JOTGATE_REFRESH_INVALID' }, 'its live refresh token too')
  await t.rejects(sessions.refresh('nope'), { code: 'JOTGATE_REFRESH_INVALID' })
})

t.test('concurrent refreshes: exactly one succeeds', async (t) => {
  const { sessions } = setup(t)
  const pair = await sessions.login({ sub: 'carol', claims: {} }, undefined)
  const results = await Promise.allSettled(Array.from({ length: 10 }, () => sessions.refresh(pair.refresh_token)))
  t.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
  t.same(results.filter((r) => r.status === 'rejected').map((r) => code((r as PromiseRejectedResult).reason)), Array(9).fill('JOTGATE_REFRESH_INVALID'))
})

t.test('the winner of a refresh race succeeds even when the replays revoke the session before it continues', async (t) => {
  // The winner's spend is held back until every loser has been refused (and
  // has revoked the session): what happens when the racers run on other
  // instances. The winner checked the session before spending, so it wins.
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  let spends = 0
  const { sessions, store } = setup(t, {}, {}, (s) => ({
    ...s,
    spendRefresh: async (hash) => {
      const result = await s.spendRefresh(hash)
      if (spends++ === 0) await gate
      return result
    }
  }))
  const pair = await sessions.login({ sub: 'dora', claims: {} }, undefined)
  const sid = decode(pair.access_token).payload.sid as string
  const winner = sessions.refresh(pair.refresh_token)
  const losers = await Promise.allSettled(Array.from({ length: 5 }, () => sessions.refresh(pair.refresh_token)))
  t.same(losers.map((r) => r.status), Array(5).fill('rejected'))
  t.equal(await store.isRevoked({ sid }), true, 'the replays revoked the session')
  release()
  const won = await winner
  t.equal(decode(won.access_token).payload.sid, sid, 'the winner got its pair (dead with its session)')
})

t.test('refresh checks the session before spending the token', async (t) => {
  const spent: string[] = []
  const { sessions, store } = setup(t, {}, {}, (s) => ({ ...s, spendRefresh: (hash) => { spent.push(hash); return s.spendRefresh(hash) } }))
  const pair = await sessions.login({ sub: 'erin', claims: {} }, undefined)
  await store.revokeSid(decode(pair.access_token).payload.sid as string, 60)
  await t.rejects(sessions.refresh(pair.refresh_token), { code: 'JOTGATE_REFRESH_INVALID' })
  t.same(spent, [], 'not spent')
})

t.test('a refresh token without an embedded sid (older format) still has its session checked', async (t) => {
  const { sessions, store } = setup(t)
  const t0 = Math.floor(Date.now() / 1000)
  const legacy = (sid: string) => {
    const token = mintRefreshToken('not-a-16-byte-id')
    t.equal(Buffer.from(token, 'base64url').length, 32, 'old format: 32 random bytes')
    t.equal(sidOfRefreshToken(token), undefined)
    return store.putRefresh(refreshHash(token), { sub: 'finn', sid, claims: {}, issuedAt: t0, expiresAt: t0 + 600 }).then(() => token)
  }
  const live = await legacy(randomId())
  const pair = await sessions.refresh(live)
  t.equal(decode(pair.access_token).payload.sub, 'finn')
  const sid = randomId()
  const dead = await legacy(sid)
  await store.revokeSid(sid, 60)
  await t.rejects(sessions.refresh(dead), { code: 'JOTGATE_REFRESH_INVALID' })
})

t.test('refresh token format helpers', async (t) => {
  const sid = randomId()
  const token = mintRefreshToken(sid)
  t.match(token, /^[A-Za-z0-9_-]{64}$/)
  t.equal(sidOfRefreshToken(token), sid)
  t.not(mintRefreshToken(sid), token, 'random part differs')
  for (const bad of ['', 'a', `${token}=`, `${token.slice(0, -1)}.`, 'x'.repeat(64), `${token}AA`]) {
    const s = sidOfRefreshToken(bad)
    t.ok(s === undefined || s.length === 22, `${JSON.stringify(bad.slice(0, 10))}: no crash`)
  }
  t.equal(sidOfRefreshToken(token.slice(0, 43)), undefined)
})

t.test('logout revokes the jti until exp + tolerance and the session for the session TTL', async (t) => {
  const calls: [string, ...unknown[]][] = []
  const { sessions, store } = setup(t, { clients: { web: { refreshTtl: '30d' } } }, {}, (s) => ({
    ...s,
    revokeJti: (jti, exp) => { calls.push(['jti', jti, exp]); return s.revokeJti(jti, exp) },
    revokeSid: (sid, ttl) => { calls.push(['sid', sid, ttl]); return s.revokeSid(sid, ttl) },
    revokeSub: (sub, at, ttl) => { calls.push(['sub', sub, at, ttl]); return s.revokeSub(sub, at, ttl) }
  }))
  const pair = await sessions.login({ sub: 'gus', claims: {} }, undefined)
  const { jti, sid, exp } = decode(pair.access_token).payload as { jti: string, sid: string, exp: number }
  await sessions.logout(verified(pair.access_token), pair.refresh_token)
  // The longest refreshTtl (the client's 30d) + maxLifetime 24h + clockTolerance 30s.
  const sessionTtl = 30 * 86400 + 86400 + 30
  t.same(calls, [['jti', jti, exp + 30], ['sid', sid, sessionTtl]])
  t.equal(await store.isRevoked({ jti }), true)
  t.equal(await store.isRevoked({ sid }), true)
  t.equal((await store.spendRefresh(refreshHash(pair.refresh_token))).status, 'reused', 'the refresh token given was spent')

  calls.length = 0
  const before = Math.floor(Date.now() / 1000)
  const other = await sessions.login({ sub: 'gus', claims: {} }, undefined)
  await sessions.logoutAll(verified(other.access_token))
  t.equal(calls.length, 1)
  t.equal(calls[0]![0], 'sub')
  t.ok((calls[0]![2] as number) >= before)
  t.equal(calls[0]![3], sessionTtl)
})

t.test('logout of a token without jti and sid is refused', async (t) => {
  const { sessions } = setup(t)
  await t.rejects(sessions.logout({ claims: { sub: 'x', iss: ISSUER }, iss: ISSUER, kid: 'es256', exp: Math.floor(Date.now() / 1000) + 60 }, undefined), { code: 'JOTGATE_BAD_REQUEST' })
  await t.rejects(sessions.logoutAll({ claims: { iss: ISSUER }, iss: ISSUER, kid: 'es256', exp: 0 }), { code: 'JOTGATE_BAD_REQUEST' })
})

t.test('logout-all: earlier tokens revoked; a login right after waits at most a second', async (t) => {
  const { sessions, store } = setup(t)
  const a = await sessions.login({ sub: 'hal', claims: {} }, undefined)
  const b = await sessions.login({ sub: 'hal', claims: {} }, undefined)
  await sessions.logoutAll(verified(a.access_token))
  const cutOff = (await store.subRevokedAt('hal'))!
  for (const p of [a, b]) {
    const { payload } = decode(p.access_token)
    t.equal(await store.isRevoked({ sub: 'hal', iat: payload.iat as number, jti: payload.jti as string, sid: payload.sid as string }), true)
    await t.rejects(sessions.refresh(p.refresh_token), { code: 'JOTGATE_REFRESH_INVALID' })
  }
  const started = Date.now()
  const fresh: TokenPair = await sessions.login({ sub: 'hal', claims: {} }, undefined)
  t.ok(Date.now() - started <= 1100, `waited ${Date.now() - started} ms`)
  const { payload } = decode(fresh.access_token)
  t.ok((payload.iat as number) > cutOff, 'born after the cut-off')
  t.equal(await store.isRevoked({ sub: 'hal', iat: payload.iat as number, jti: payload.jti as string, sid: payload.sid as string }), false)
  const next = await sessions.refresh(fresh.refresh_token)
  t.ok(next.access_token)
})

t.test('a login in the cut-off second is never born revoked, even with a clock that stands still', async (t) => {
  const frozen = Date.now()
  const raw = baseConfig('unit-sessions', { store: { type: 'memory' }, auth: { delegate: { url: 'http://127.0.0.1:9/login' } } })
  const { config } = loadConfigObject(raw, keyDir)
  const store = createMemoryStore(() => frozen)
  t.teardown(() => store.close())
  const sessions = createSessionService(config, createKeyTable(config).signing!, store, () => frozen)
  await store.revokeSub('ivy', Math.floor(frozen / 1000), 60)
  const pair = await sessions.login({ sub: 'ivy', claims: {} }, undefined)
  t.equal(decode(pair.access_token).payload.iat, Math.floor(frozen / 1000) + 1)
})
