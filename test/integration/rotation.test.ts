/**
 * Rotation of jotgate's own keys (CONTRACT sections 1, 2 and 4), walked the
 * way an operator does it: `jotgate keys generate`, add the new key as
 * verify-only, reload, switch `sign: true` to it keeping the old one as
 * verify-only, reload, retire the old one. Tokens signed before keep
 * working during the overlap; new tokens (login and `jotgate token sign`)
 * carry the new kid; the JWKS endpoint lists every public key, never a
 * private member or an HMAC secret.
 */
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { run as keysGenerate } from '../../src/cli/keys-generate.js'
import { run as tokenCli } from '../../src/cli/token.js'
import type { CliIo } from '../../src/cli/io.js'
import { loadConfigFile } from '../../src/config/load.js'
import { runGateway, type RunningGateway } from '../../src/server.js'
import bcrypt from 'bcryptjs'
import { captureLogger } from '../helpers/gateway.js'
import { startUpstream } from '../helpers/upstream.js'

const ISSUER = 'https://rotation.jotgate.test'
const PASSWORD = 'correct horse battery staple'

const dir = mkdtempSync(join(tmpdir(), 'jotgate-rotation-'))
const keysDir = join(dir, 'keys')
const configFile = join(dir, 'gateway.yaml')
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

function capture (): { io: CliIo, out: string[], err: string[] } {
  const out: string[] = []
  const err: string[] = []
  return { io: { stdout: (l) => out.push(l), stderr: (l) => err.push(l), env: {} }, out, err }
}

async function generate (args: string[]): Promise<string> {
  const { io, out, err } = capture()
  const code = await keysGenerate([...args, '--out', keysDir], io)
  if (code !== 0) throw new Error(`keys generate failed: ${err.join('\n')}`)
  return out[0]!
}

async function signCli (args: string[] = []): Promise<{ code: number, token: string | undefined }> {
  const { io, out } = capture()
  const code = await tokenCli(['sign', '--config', configFile, '--sub', 'script', ...args], io)
  return { code, token: code === 0 ? out[0] : undefined }
}

const header = (token: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString('utf8')) as Record<string, unknown>

type KeyEntry = Record<string, unknown>
const signing = (kid: string, alg = 'ES256'): KeyEntry => ({ kid, alg, privateKeyFile: `keys/${kid}.key.pem`, sign: true })
const verifyOnly = (kid: string, alg = 'ES256'): KeyEntry => ({ kid, alg, publicKeyFile: `keys/${kid}.pub.pem` })

t.test('the rotation walk: old tokens keep working, new tokens carry the new kid', async (t) => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  writeFileSync(join(dir, 'users.yaml'), `users:\n  - username: alice\n    password: ${JSON.stringify(bcrypt.hashSync(PASSWORD, 4))}\n    claims: { roles: [user] }\n`)

  const k1 = await generate(['--alg', 'ES256', '--kid', 'k1'])
  t.equal(k1, 'k1')
  const hmac = await generate(['--alg', 'HS256', '--kid', 'h1'])
  const hmacEntry: KeyEntry = { kid: hmac, alg: 'HS256', secretFile: `keys/${hmac}.secret` }

  const writeConfig = (keys: KeyEntry[]) => {
    // JSON is YAML: the file is what an operator would write.
    writeFileSync(configFile, JSON.stringify({
      server: { host: '127.0.0.1', port: 0 },
      store: { type: 'memory' },
      tokens: { issuer: ISSUER, audience: ['api'], keys: [...keys, hmacEntry] },
      auth: { users: { file: 'users.yaml' } },
      routes: [{ path: '/', upstream: up.url }]
    }, null, 2))
  }

  writeConfig([signing('k1')])
  const logs: string[] = []
  const running: RunningGateway = await runGateway(loadConfigFile(configFile), captureLogger(logs) as never, {})
  t.teardown(() => running.shutdown('test'))
  const base = `http://127.0.0.1:${running.ports.server}`

  const proxied = async (token: string): Promise<{ status: number, code: string | undefined }> => {
    const res = await fetch(`${base}/orders`, { headers: { authorization: `Bearer ${token}` } })
    const body = await res.json() as { code?: string }
    return { status: res.status, code: body.code }
  }
  const login = async (): Promise<string> => {
    const res = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password: PASSWORD }) })
    t.equal(res.status, 200, 'login succeeds')
    return (await res.json() as { access_token: string }).access_token
  }
  const jwks = async (): Promise<Array<Record<string, unknown>>> => {
    const res = await fetch(`${base}/.well-known/jwks.json`)
    t.equal(res.status, 200, 'JWKS served')
    return (await res.json() as { keys: Array<Record<string, unknown>> }).keys
  }
  const PUBLIC_MEMBERS = new Set(['kid', 'kty', 'crv', 'x', 'y', 'n', 'e', 'alg', 'use'])
  const checkJwks = async (expected: string[], step: string) => {
    const keys = await jwks()
    t.same(keys.map((k) => k.kid).sort(), [...expected].sort(), `${step}: JWKS lists ${expected.join(', ')}`)
    for (const k of keys) {
      t.same(Object.keys(k).filter((m) => !PUBLIC_MEMBERS.has(m)), [], `${step}: ${String(k.kid)} holds public members only`)
      t.not(k.kty, 'oct', `${step}: no symmetric key published`)
    }
    t.notOk(keys.some((k) => k.kid === hmac), `${step}: the HMAC key is never published`)
  }

  // Step 0: k1 signs.
  const oldCli = (await signCli()).token!
  t.equal(header(oldCli).kid, 'k1', 'token sign uses k1')
  const oldLogin = await login()
  t.equal(header(oldLogin).kid, 'k1', 'login signs with k1')
  t.equal((await proxied(oldCli)).status, 200)
  t.equal((await proxied(oldLogin)).status, 200)
  await checkJwks(['k1'], 'k1 only')

  // Step 1: a new key, verify-only.
  const k2 = await generate(['--alg', 'ES256'])
  t.match(k2, /^[A-Za-z0-9_-]{43}$/, 'without --kid, the RFC 7638 thumbprint is the kid')
  writeConfig([signing('k1'), verifyOnly(k2)])
  t.equal(await running.reload(), true, 'reload with k2 verify-only accepted')
  await checkJwks(['k1', k2], 'k2 added verify-only')
  t.equal((await proxied(oldCli)).status, 200, 'old token still accepted')
  t.equal(header((await signCli()).token!).kid, 'k1', 'k1 still signs')
  const noPrivate = await signCli([`--kid=${k2}`]) // = form: a thumbprint kid may begin with '-'
  t.equal(noPrivate.code, 1, 'token sign --kid k2 refused: k2 holds no private material here')

  // Step 2: k2 signs, k1 verify-only.
  writeConfig([signing(k2), verifyOnly('k1')])
  t.equal(await running.reload(), true, 'reload switching sign to k2 accepted')
  await checkJwks(['k1', k2], 'overlap')
  t.equal((await proxied(oldCli)).status, 200, 'token signed by k1 (token sign) still accepted')
  t.equal((await proxied(oldLogin)).status, 200, 'token signed by k1 (login) still accepted')
  const newCli = (await signCli()).token!
  t.equal(header(newCli).kid, k2, 'token sign now uses k2')
  t.equal((await proxied(newCli)).status, 200, 'new token accepted')
  const newLogin = await login()
  t.equal(header(newLogin).kid, k2, 'login now signs with k2')
  t.equal((await proxied(newLogin)).status, 200, 'new login token accepted')

  // Step 3: k1 retired.
  writeConfig([signing(k2)])
  t.equal(await running.reload(), true, 'reload retiring k1 accepted')
  await checkJwks([k2], 'k1 retired')
  const retired = await proxied(oldCli)
  t.equal(retired.status, 401, 'a k1 token is refused once k1 is retired')
  t.equal(retired.code, 'JOTGATE_TOKEN_KEY_UNKNOWN')
  t.equal((await proxied(newCli)).status, 200, 'k2 tokens keep working')
  t.equal((await proxied(newLogin)).status, 200)
  t.equal(up.seen.filter((s) => s.headers['x-user-id'] !== undefined).length, up.seen.length, 'every forwarded request carried an identity')
  t.notOk(logs.some((l) => l.includes(oldCli) || l.includes(newCli)), 'no whole token in the logs')
})
