/**
 * CONTRACT section 3 step 5 and section 5: revocation by jti, sid and sub
 * cut-off, through the admin API and the `jotgate revoke` CLI, over real
 * sockets and real Redis. Once a revocation call returns, every instance
 * sharing the store refuses the tokens it covers, and the upstream never
 * sees them.
 */
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startUpstream, type Upstream } from '../helpers/upstream.js'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { AUDIENCE, ISSUER, claims, keyConfigs, mint, now } from '../helpers/zoo.js'
import { REDIS_URL, trackPrefixes, uniquePrefix } from '../helpers/redis.js'
import { run as revokeCli } from '../../src/cli/revoke.js'
import type { CliIo } from '../../src/cli/io.js'

interface Answer { status: number, code: string | undefined }

async function get (gw: TestGateway, token: string): Promise<Answer> {
  const res = await fetch(`${gw.url}/things`, { headers: { authorization: `Bearer ${token}` } })
  const body = await res.json() as { code?: string }
  return { status: res.status, code: body.code }
}

async function revoke (gw: TestGateway, body: unknown): Promise<number> {
  const res = await fetch(`${gw.adminUrl!}/revocations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  await res.arrayBuffer()
  return res.status
}

const id = (): string => randomBytes(6).toString('hex')
const REVOKED = { status: 401, code: 'JOTGATE_TOKEN_REVOKED' }
const PASSED = { status: 200, code: undefined }

const prefixes = trackPrefixes(t)

async function setup (t: Test, keyPrefix = uniquePrefix('revocation')): Promise<{ up: Upstream, gw: TestGateway }> {
  prefixes.push(keyPrefix)
  const up = await startUpstream()
  const gw = await startGateway({
    admin: true,
    config: { routes: [{ path: '/', upstream: up.url }], store: { type: 'redis', url: REDIS_URL, keyPrefix } }
  })
  t.teardown(async () => { await gw.close(); await up.close() })
  return { up, gw }
}

t.test('a revoked jti is refused and never reaches the upstream', async (t) => {
  const { up, gw } = await setup(t)
  const payload = claims({ sub: `u-${id()}` })
  const token = mint({ payload })
  t.same(await get(gw, token), PASSED, 'positive control: the token passes')
  t.equal(up.seen.length, 1)

  t.equal(await revoke(gw, { jti: payload.jti, exp: payload.exp }), 201)
  t.same(await get(gw, token), REVOKED)
  t.same(await get(gw, token), REVOKED, 'and stays refused')
  t.equal(up.seen.length, 1, 'the upstream saw nothing new')

  const other = mint({ payload: claims({ sub: payload.sub, sid: payload.sid }) })
  t.same(await get(gw, other), PASSED, 'another jti of the same sub and sid still passes')
  t.equal(up.seen.length, 2)
})

t.test('a revoked sid covers every token carrying it', async (t) => {
  const { up, gw } = await setup(t)
  const sid = id()
  const tokens = [1, 2, 3].map(() => mint({ payload: claims({ sid, sub: `u-${id()}` }) }))
  const bystander = mint({ payload: claims({ sid: id() }) })
  for (const token of tokens) t.same(await get(gw, token), PASSED, 'positive control')
  t.equal(up.seen.length, 3)

  t.equal(await revoke(gw, { sid }), 201)
  for (const token of tokens) t.same(await get(gw, token), REVOKED)
  t.equal(up.seen.length, 3, 'the upstream saw nothing new')
  t.same(await get(gw, bystander), PASSED, 'a token of another session passes')
  t.same(await get(gw, mint({ payload: claims({ sid, jti: id() }) })), REVOKED, 'a new token of the revoked session is refused too')
})

t.test('a revoked sub covers tokens issued at or before the cut-off', async (t) => {
  const { up, gw } = await setup(t)
  const sub = `u-${id()}`
  const t0 = now()
  const current = mint({ payload: claims({ sub }) })
  const older = mint({ payload: claims({ sub, iat: t0 - 100, nbf: t0 - 100 }) })
  const noIat = mint({ payload: claims({ sub, iat: undefined }) })
  // Issued before the revocation, in the same second as its cut-off.
  const fractional = mint({ payload: claims({ sub, iat: Date.now() / 1000 }) })
  t.same(await get(gw, current), PASSED, 'positive control')
  t.same(await get(gw, fractional), PASSED)
  t.same(await get(gw, older), PASSED)
  t.same(await get(gw, noIat), PASSED)
  const seen = up.seen.length

  t.equal(await revoke(gw, { sub }), 201)
  t.same(await get(gw, current), REVOKED, 'iat = now')
  t.same(await get(gw, older), REVOKED, 'iat before the cut-off')
  t.same(await get(gw, noIat), REVOKED, 'no iat under a revoked sub: fail closed')
  t.same(await get(gw, fractional), REVOKED, 'a fractional iat before the revocation')
  t.equal(up.seen.length, seen, 'the upstream saw nothing new')

  // Issued after the cut-off (a few seconds ahead, inside clockTolerance).
  const later = mint({ payload: claims({ sub, iat: now() + 2, nbf: now(), exp: now() + 600 }) })
  t.same(await get(gw, later), PASSED, 'a token issued after the cut-off passes')
  t.same(await get(gw, mint({ payload: claims({ sub: `u-${id()}` }) })), PASSED, 'another sub passes')
})

t.test('two instances sharing the store: a revocation through A is refused by B on the next request', async (t) => {
  const keyPrefix = uniquePrefix('revocation-shared')
  const a = await setup(t, keyPrefix)
  const b = await setup(t, keyPrefix)
  for (let round = 0; round < 5; round++) {
    const payload = claims({ sub: `u-${id()}` })
    const byJti = mint({ payload })
    const bySid = mint({ payload: claims({ sid: id() }) })
    const bySub = mint({ payload: claims({ sub: `u-${id()}`, iat: now() - 1 }) })
    for (const token of [byJti, bySid, bySub]) t.same(await get(b.gw, token), PASSED, `round ${round}: B accepts before`)
    const seen = b.up.seen.length

    t.equal(await revoke(a.gw, { jti: payload.jti, exp: payload.exp }), 201)
    t.same(await get(b.gw, byJti), REVOKED, `round ${round}: jti revoked on A, refused by B`)
    t.equal(await revoke(a.gw, { sid: JSON.parse(Buffer.from(bySid.split('.')[1]!, 'base64url').toString()).sid }), 201)
    t.same(await get(b.gw, bySid), REVOKED, `round ${round}: sid revoked on A, refused by B`)
    t.equal(await revoke(a.gw, { sub: JSON.parse(Buffer.from(bySub.split('.')[1]!, 'base64url').toString()).sub }), 201)
    t.same(await get(b.gw, bySub), REVOKED, `round ${round}: sub revoked on A, refused by B`)
    t.equal(b.up.seen.length, seen, 'B\'s upstream saw nothing new')
  }
  t.equal(a.up.seen.length, 0, 'A proxied nothing')
})

t.test('jotgate revoke (CLI) revokes through the configured store', async (t) => {
  const keyPrefix = uniquePrefix('revocation-cli')
  const { up, gw } = await setup(t, keyPrefix)
  const dir = mkdtempSync(join(tmpdir(), 'jotgate-revoke-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'gateway.yaml')
  // JSON is YAML; the zoo key entries name absolute key files.
  writeFileSync(file, JSON.stringify({
    store: { type: 'redis', url: REDIS_URL, keyPrefix },
    tokens: { issuer: ISSUER, audience: [AUDIENCE], keys: keyConfigs() },
    routes: [{ path: '/', upstream: up.url }]
  }, null, 2))
  const cli = async (args: string[]): Promise<{ code: number, out: string[], err: string[] }> => {
    const out: string[] = []
    const err: string[] = []
    const io: CliIo = { stdout: (l) => out.push(l), stderr: (l) => err.push(l), env: {} }
    const code = await revokeCli(args, io)
    return { code, out, err }
  }

  const victim = `u-${id()}`
  const victimToken = mint({ payload: claims({ sub: victim }) })
  const bad = [
    [],
    ['--config', file],
    ['--config', file, '--jti', 'x'],
    ['--config', file, '--exp', '2000000000'],
    ['--config', file, '--jti', 'x', '--exp', 'soon'],
    ['--config', file, '--jti', 'x', '--exp', '-5'],
    ['--config', file, '--jti', 'x', '--exp', '2000000000', '--sub', victim],
    ['--config', file, '--sub', victim, '--sid', 'y'],
    ['--config', file, '--sub', victim, '--exp', '2000000000'],
    ['--config', file, '--sub', victim, '--bogus'],
    ['--config', file, '--sub'],
    ['--config', file, 'extra', '--sub', victim]
  ]
  for (const args of bad) {
    const res = await cli(args)
    t.equal(res.code, 2, `exit 2: ${args.slice(2).join(' ') || '(no target)'}`)
    t.ok(res.err.length > 0, 'says why on stderr')
    t.same(res.out, [], 'prints nothing on stdout')
  }
  t.same(await get(gw, victimToken), PASSED, 'nothing was revoked by the refused invocations')

  const byJti = claims({ sub: `u-${id()}` })
  const jtiToken = mint({ payload: byJti })
  const sid = id()
  const sidToken = mint({ payload: claims({ sid }) })
  for (const token of [jtiToken, sidToken]) t.same(await get(gw, token), PASSED, 'positive control')
  const seen = up.seen.length

  t.equal((await cli(['--config', file, '--jti', String(byJti.jti), '--exp', String(byJti.exp)])).code, 0, 'jti: exit 0')
  t.same(await get(gw, jtiToken), REVOKED)
  t.equal((await cli(['--config', file, '--sid', sid])).code, 0, 'sid: exit 0')
  t.same(await get(gw, sidToken), REVOKED)
  t.equal((await cli(['-c', file, '--sub', victim])).code, 0, 'sub: exit 0')
  t.same(await get(gw, victimToken), REVOKED)
  t.equal(up.seen.length, seen, 'the upstream saw nothing new')

  const missing = await cli(['--config', join(dir, 'missing.yaml'), '--sid', 'z'])
  t.equal(missing.code, 1, 'an unreadable config: exit 1')
})
