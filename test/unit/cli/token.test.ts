import t from 'tap'
import { createHmac, createPublicKey, verify as cryptoVerify } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { run } from '../../../src/cli/token.js'
import type { CliIo } from '../../../src/cli/io.js'
import { AUDIENCE, ISSUER, KEYS, claims, mint, now, tamper, zoo } from '../../helpers/zoo.js'

function capture (): { io: CliIo, out: string[], err: string[] } {
  const out: string[] = []
  const err: string[] = []
  return { io: { stdout: (l) => out.push(l), stderr: (l) => err.push(l), env: {} }, out, err }
}

const dir = mkdtempSync(join(tmpdir(), 'jotgate-token-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

/** Zoo keys (es256 signs; es384 is verify-only; hs256 holds a secret), memory store: no network. */
function configFile (name: string, extraTokens = ''): string {
  const file = join(dir, name)
  writeFileSync(file, `
store: { type: memory }
tokens:
  issuer: ${ISSUER}
  audience: [${AUDIENCE}, other]
${extraTokens}
  keys:
    - ${JSON.stringify(KEYS.es256!.config)}
    - ${JSON.stringify(KEYS.es384!.config)}
    - ${JSON.stringify(KEYS.hs256!.config)}
`)
  return file
}
const CONFIG = configFile('gateway.yaml')

const decode = (part: string): Record<string, unknown> => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>
const parts = (token: string) => {
  const [h, p, s] = token.split('.') as [string, string, string]
  return { header: decode(h), payload: decode(p), input: `${h}.${p}`, signature: Buffer.from(s, 'base64url') }
}

async function sign (args: string[], config = CONFIG): Promise<string> {
  const { io, out, err } = capture()
  const code = await run(['sign', '--config', config, ...args], io)
  if (code !== 0) throw new Error(`token sign exited ${code}: ${err.join(' | ')}`)
  if (out.length !== 1) throw new Error(`expected one line, got ${out.length}`)
  return out[0]!
}

async function verify (token: string, config = CONFIG): Promise<{ code: number, out: string[], err: string[] }> {
  const { io, out, err } = capture()
  const code = await run(['verify', '--config', config, token], io)
  return { code, out, err }
}

t.test('sign then verify: the claims round-trip', async (t) => {
  const before = now()
  const token = await sign(['--sub', 'alice', '--claim', 'n=5', '--claim', 'roles=["a","b"]', '--claim', 's=abc', '--claim', 'b=true', '--claim', 'o={"x":1}', '--claim', 'q="5"', '--claim', 'eq=a=b'])
  const { header, payload } = parts(token)
  t.match(header, { alg: 'ES256', kid: 'es256', typ: 'JWT' })
  const { code, out, err } = await verify(token)
  t.equal(code, 0)
  t.same(err, [])
  t.equal(out.length, 1)
  const verified = JSON.parse(out[0]!) as Record<string, unknown>
  t.same(verified, payload, 'verify prints the claims as JSON')
  t.match(verified, { iss: ISSUER, sub: 'alice', aud: AUDIENCE, n: 5, roles: ['a', 'b'], s: 'abc', b: true, o: { x: 1 }, q: '5', eq: 'a=b' })
  t.type(verified.jti, 'string')
  t.ok((verified.iat as number) >= before && (verified.iat as number) <= now())
  t.equal(verified.nbf, verified.iat)
  t.equal((verified.exp as number) - (verified.iat as number), 600, 'the default ttl is tokens.accessTtl (10m)')
  // Independently of the code under test: the signature is the zoo key's.
  const { input, signature } = parts(token)
  t.ok(cryptoVerify('sha256', Buffer.from(input), { key: createPublicKey(KEYS.es256!.publicPem!), dsaEncoding: 'ieee-p1363' }, signature))
})

t.test('--ttl and --aud', async (t) => {
  const { payload } = parts(await sign(['--sub', 'bob', '--ttl', '90s', '--aud', 'other']))
  t.equal((payload.exp as number) - (payload.iat as number), 90)
  t.equal(payload.aud, 'other')
  const bare = parts(await sign(['--sub', 'bob', '--ttl', '120'])).payload
  t.equal((bare.exp as number) - (bare.iat as number), 120, 'a bare number is seconds')

  const two = parts(await sign(['--sub', 'bob', '--aud', 'api', '--aud', 'other'])).payload
  t.same(two.aud, ['api', 'other'], '--aud repeated: an array')

  const foreign = await sign(['--sub', 'bob', '--aud', 'elsewhere'])
  const refused = await verify(foreign)
  t.equal(refused.code, 1)
  t.same(refused.err, ['JOTGATE_TOKEN_AUDIENCE'], 'an audience the config does not accept')
})

t.test('--kid signs with a non-default key holding private material', async (t) => {
  const token = await sign(['--sub', 'carol', '--kid', 'hs256'])
  const { header, payload, input, signature } = parts(token)
  t.match(header, { alg: 'HS256', kid: 'hs256' })
  t.equal(payload.sub, 'carol')
  const expected = createHmac('sha256', KEYS.hs256!.signKey as Buffer).update(input).digest()
  t.ok(signature.equals(expected), 'HMAC with the configured secret')
  const { code, out } = await verify(token)
  t.equal(code, 0)
  t.equal((JSON.parse(out[0]!) as { sub: string }).sub, 'carol')
})

t.test('--kid naming a verify-only or unknown key: exit 1', async (t) => {
  for (const kid of ['es384', 'nope']) {
    const { io, out, err } = capture()
    t.equal(await run(['sign', '--config', CONFIG, '--sub', 'x', '--kid', kid], io), 1, kid)
    t.same(out, [])
    t.same(err, [`--kid ${kid}: no key with private material has this kid`])
  }
})

t.test('no sign: true key and no --kid: exit 1', async (t) => {
  const file = join(dir, 'nosign.yaml')
  writeFileSync(file, `tokens:\n  issuer: ${ISSUER}\n  audience: [api]\n  keys:\n    - ${JSON.stringify(KEYS.hs384!.config)}\n`)
  const { io, err } = capture()
  t.equal(await run(['sign', '--config', file, '--sub', 'x'], io), 1)
  t.same(err, ['tokens.keys: no key has sign: true (use --kid)'])
})

t.test('verify: a tampered token fails with JOTGATE_TOKEN_SIGNATURE', async (t) => {
  const token = await sign(['--sub', 'alice'])
  const { code, out, err } = await verify(tamper(token))
  t.equal(code, 1)
  t.same(out, [])
  t.same(err, ['JOTGATE_TOKEN_SIGNATURE'])
  // The payload changed under the original signature: same code.
  const { input, signature } = parts(token)
  const forged = `${input.split('.')[0]}.${Buffer.from(JSON.stringify({ ...parts(token).payload, sub: 'mallory' })).toString('base64url')}.${signature.toString('base64url')}`
  t.same((await verify(forged)).err, ['JOTGATE_TOKEN_SIGNATURE'])
})

t.test('verify: expired tokens fail with JOTGATE_TOKEN_EXPIRED', async (t) => {
  // No clock tolerance, ttl 0: expired the moment it is made.
  const strict = configFile('strict.yaml', '  clockTolerance: 0')
  const token = await sign(['--sub', 'alice', '--ttl', '0'], strict)
  const signed = await verify(token, strict)
  t.equal(signed.code, 1)
  t.same(signed.err, ['JOTGATE_TOKEN_EXPIRED'])
  // Made by the zoo, an hour past exp (beyond the default 30 s tolerance).
  const crafted = await verify(zoo().expired)
  t.equal(crafted.code, 1)
  t.same(crafted.err, ['JOTGATE_TOKEN_EXPIRED'])
})

t.test('verify: other zoo refusals print their code', async (t) => {
  const z = zoo()
  const cases: Array<[string, string]> = [
    [z.good, ''],
    [z.wrongIssuer, 'JOTGATE_TOKEN_ISSUER'],
    [z.unknownKid, 'JOTGATE_TOKEN_KEY_UNKNOWN'],
    [z.notYetValid, 'JOTGATE_TOKEN_NOT_YET_VALID'],
    [z.garbage, 'JOTGATE_TOKEN_MALFORMED'],
    [mint({ key: KEYS.es384!, payload: claims({ aud: 'other' }) }), '']
  ]
  for (const [token, code] of cases) {
    const result = await verify(token)
    t.equal(result.code, code === '' ? 0 : 1, code || 'valid')
    if (code !== '') t.same(result.err, [code])
  }
})

t.test('usage errors: exit 2', async (t) => {
  const cases: string[][] = [
    [],
    ['mint'],
    ['sign', '--config', CONFIG],
    ['sign', '--config', CONFIG, '--sub', 'a', '--claim', 'novalue'],
    ['sign', '--config', CONFIG, '--sub', 'a', '--claim', '=v'],
    ['sign', '--config', CONFIG, '--sub', 'a', '--ttl', '10 minutes'],
    ['sign', '--config', CONFIG, '--sub', 'a', '--colour', 'x'],
    ['verify', '--config', CONFIG],
    ['verify', '--config', CONFIG, 'a', 'b']
  ]
  for (const args of cases) {
    const { io, out } = capture()
    t.equal(await run(args, io), 2, args.join(' ') || '(nothing)')
    t.same(out, [])
  }
})

t.test('a broken config: exit 1 with its problems', async (t) => {
  const file = join(dir, 'broken.yaml')
  writeFileSync(file, 'tokens:\n  keys: 5\n')
  const { io, err } = capture()
  t.equal(await run(['sign', '--config', file, '--sub', 'a'], io), 1)
  t.same(err, ['tokens.keys: must be a list'])
})
