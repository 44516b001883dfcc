import t from 'tap'
import { createPrivateKey, createPublicKey } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { run } from '../../../src/cli/keys-generate.js'
import type { CliIo } from '../../../src/cli/io.js'
import { jwkThumbprint } from '../../../src/keys/jwk.js'
import { keyMismatch } from '../../../src/keys/material.js'
import type { Algorithm } from '../../../src/config/schema.js'

function capture (): { io: CliIo, out: string[], err: string[] } {
  const out: string[] = []
  const err: string[] = []
  return { io: { stdout: (l) => out.push(l), stderr: (l) => err.push(l), env: {} }, out, err }
}

function tempDir (t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'jotgate-keys-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const mode = (file: string): number => statSync(file).mode & 0o777

for (const alg of ['RS256', 'PS384', 'ES256', 'ES384', 'ES512', 'EdDSA'] as Algorithm[]) {
  t.test(`${alg}: a key pair named by its thumbprint`, async (t) => {
    const dir = join(tempDir(t), 'nested', 'keys') // created when missing
    const { io, out, err } = capture()
    t.equal(await run(['--alg', alg, '--out', dir], io), 0)
    t.same(err, [])
    t.equal(out.length, 2)
    const kid = out[0]!
    const keyFile = join(dir, `${kid}.key.pem`)
    const pubFile = join(dir, `${kid}.pub.pem`)
    t.equal(mode(keyFile), 0o600)
    t.equal(mode(pubFile), 0o644)
    const privateKey = createPrivateKey(readFileSync(keyFile))
    const publicKey = createPublicKey(readFileSync(pubFile))
    t.equal(keyMismatch(alg, createPublicKey(privateKey)), undefined)
    t.equal(kid, jwkThumbprint(publicKey))
    t.equal(jwkThumbprint(privateKey), kid, 'the pair belongs together')
    if (alg.startsWith('RS') || alg.startsWith('PS')) t.equal(publicKey.asymmetricKeyDetails?.modulusLength, 3072)
    t.same(parseYaml(out[1]!), [{ kid, alg, privateKeyFile: keyFile, sign: true }])
  })
}

t.test('HS512: a 64-byte secret, a random kid', async (t) => {
  const dir = tempDir(t)
  const { io, out } = capture()
  t.equal(await run(['--alg', 'HS512', '--out', dir], io), 0)
  const kid = out[0]!
  t.match(kid, /^[A-Za-z0-9_-]{22}$/)
  const file = join(dir, `${kid}.secret`)
  t.equal(readFileSync(file).length, 64)
  t.equal(mode(file), 0o600)
  t.same(parseYaml(out[1]!), [{ kid, alg: 'HS512', secretFile: file, sign: true }])
})

t.test('--kid names the files; a numeric kid stays a string in the YAML', async (t) => {
  const dir = tempDir(t)
  const { io, out } = capture()
  t.equal(await run(['--alg', 'ES256', '--kid', '2024', '--out', dir], io), 0)
  t.equal(out[0], '2024')
  t.equal(statSync(join(dir, '2024.key.pem')).isFile(), true)
  t.same(parseYaml(out[1]!), [{ kid: '2024', alg: 'ES256', privateKeyFile: join(dir, '2024.key.pem'), sign: true }])
})

t.test('never overwrites', async (t) => {
  const dir = tempDir(t)
  for (const [alg, file] of [['HS256', 'k.secret'], ['EdDSA', 'k.pub.pem']] as const) {
    writeFileSync(join(dir, file), 'keep me')
    const { io, out, err } = capture()
    t.equal(await run(['--alg', alg, '--kid', 'k', '--out', dir], io), 1, alg)
    t.same(out, [])
    t.equal(err.length, 1)
    t.match(err[0], join(dir, file))
    t.equal(readFileSync(join(dir, file), 'utf8'), 'keep me')
  }
  // The EdDSA refusal happened before writing k.key.pem.
  t.throws(() => statSync(join(dir, 'k.key.pem')), { code: 'ENOENT' })
})

t.test('an --out that cannot be created fails with exit 1, without hanging', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'file'), '')
  symlinkSync(join(dir, 'nowhere'), join(dir, 'dangling'))
  const outs = [join(dir, 'file', 'keys'), join(dir, 'dangling', 'keys')]
  // procfs answers ENOENT to mkdir, which makes Node's recursive mkdir spin forever.
  if (existsSync('/proc/self')) outs.push('/proc/jotgate-test/keys')
  for (const out of outs) {
    const { io, err } = capture()
    t.equal(await run(['--alg', 'HS256', '--out', out], io), 1, out)
    t.match(err, [/^error: cannot create /])
  }
})

const usageErrors: Array<[string, string[]]> = [
  ['unknown flag', ['--alg', 'ES256', '--out', 'x', '--force']],
  ['positional', ['--alg', 'ES256', '--out', 'x', 'extra']],
  ['missing --alg', ['--out', 'x']],
  ['missing --out', ['--alg', 'ES256']],
  ['unknown alg', ['--alg', 'none', '--out', 'x']],
  ['alg case', ['--alg', 'es256', '--out', 'x']],
  ['kid with slash', ['--alg', 'HS256', '--kid', '../evil', '--out', 'x']],
  ['kid ..', ['--alg', 'HS256', '--kid', '..', '--out', 'x']],
  ['kid .', ['--alg', 'HS256', '--kid', '.', '--out', 'x']],
  ['kid with backslash', ['--alg', 'HS256', '--kid', 'a\\b', '--out', 'x']],
  ['empty kid', ['--alg', 'HS256', '--kid', '', '--out', 'x']],
  ['long kid', ['--alg', 'HS256', '--kid', 'a'.repeat(129), '--out', 'x']]
]
for (const [name, args] of usageErrors) {
  t.test(`usage error: ${name}`, async (t) => {
    const { io, out, err } = capture()
    t.equal(await run(args, io), 2)
    t.same(out, [])
    t.equal(err.length, 1)
    t.match(err[0], /^error: /)
  })
}

t.test('--help', async (t) => {
  const { io, out } = capture()
  t.equal(await run(['--help'], io), 0)
  t.match(out.join('\n'), /3072/)
})
