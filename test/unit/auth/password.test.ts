import t from 'tap'
import { Readable } from 'node:stream'
import bcrypt from 'bcryptjs'
import { dummyHash, hashPassword, verifyPassword } from '../../../src/auth/password.js'
import { readPassword, run } from '../../../src/cli/hash-password.js'
import type { CliIo } from '../../../src/cli/io.js'

const SCRYPT_FORMAT = /^\$scrypt\$ln=17,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/

function capture (stdin?: NodeJS.ReadableStream): { io: CliIo, out: string[], err: string[] } {
  const out: string[] = []
  const err: string[] = []
  const io: CliIo = { stdout: (l) => out.push(l), stderr: (l) => err.push(l), env: {} }
  if (stdin !== undefined) io.stdin = stdin
  return { io, out, err }
}

// Full-cost scrypt (N = 2^17) takes 0.3 s to 3 s depending on the machine:
// hash once and reuse it, and test the CLI's input handling with a mock.
const PASSWORD = 'correct horse ✓'
const good = await hashPassword(PASSWORD)

t.test('scrypt: hash, then verify', async (t) => {
  t.match(good, SCRYPT_FORMAT)
  const [right, wrong] = await Promise.all([verifyPassword(PASSWORD, good), verifyPassword('correct horse', good)])
  t.equal(right, true)
  t.equal(wrong, false)
})

t.test('scrypt hashes with other parameters within bounds verify', async (t) => {
  // RFC 7914 section 12 test vector: scrypt("pleaseletmein", "SodiumChloride", N=16384, r=8, p=1, 64 bytes).
  const salt = Buffer.from('SodiumChloride').toString('base64').replace(/=+$/, '')
  const key = Buffer.from('7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887', 'hex')
  const hash = `$scrypt$ln=14,r=8,p=1$${salt}$${key.toString('base64').replace(/=+$/, '')}`
  t.equal(await verifyPassword('pleaseletmein', hash), true)
  t.equal(await verifyPassword('pleaseletmeIn', hash), false)
})

t.test('bcrypt $2a$ / $2b$ / $2y$', async (t) => {
  const hash = bcrypt.hashSync('hunter2', 4)
  t.match(hash, /^\$2b\$04\$/)
  for (const variant of ['2a', '2b', '2y']) {
    const h = hash.replace(/^\$2b\$/, `$${variant}$`)
    t.equal(await verifyPassword('hunter2', h), true, variant)
    t.equal(await verifyPassword('hunter3', h), false, variant)
  }
})

t.test('malformed or out-of-bounds hashes return false, never throw', async (t) => {
  const [, , , salt, key] = good.split('$')
  const bcryptHash = bcrypt.hashSync('pw', 4)
  const cases: Array<[string, string]> = [
    ['empty', ''],
    ['plain text', 'pw'],
    ['unknown scheme', '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA'],
    ['missing key', `$scrypt$ln=17,r=8,p=1$${salt}`],
    ['bad base64', `$scrypt$ln=17,r=8,p=1$${salt}$${key!.slice(0, -1)}!`],
    ['padding', `$scrypt$ln=17,r=8,p=1$${salt}$${key}=`],
    ['trailing data', `${good}$x`],
    ['short key', `$scrypt$ln=17,r=8,p=1$${salt}$${key!.slice(0, 20)}`],
    ['ln too small', `$scrypt$ln=9,r=8,p=1$${salt}$${key}`],
    ['ln too big', `$scrypt$ln=21,r=8,p=1$${salt}$${key}`],
    ['r too big', `$scrypt$ln=12,r=33,p=1$${salt}$${key}`],
    ['p too big', `$scrypt$ln=12,r=8,p=17$${salt}$${key}`],
    ['r zero', `$scrypt$ln=12,r=0,p=1$${salt}$${key}`],
    ['memory above 256 MiB', `$scrypt$ln=20,r=8,p=1$${salt}$${key}`],
    ['parameters reordered', `$scrypt$r=8,ln=17,p=1$${salt}$${key}`],
    ['bcrypt cost 31', bcryptHash.replace(/^\$2b\$04\$/, '$2b$31$')],
    ['bcrypt cost 03', bcryptHash.replace(/^\$2b\$04\$/, '$2b$03$')],
    ['bcrypt $2x$', bcryptHash.replace(/^\$2b\$/, '$2x$')],
    ['bcrypt truncated', bcryptHash.slice(0, -1)]
  ]
  for (const [name, hash] of cases) {
    t.equal(await verifyPassword(PASSWORD, hash), false, name)
  }
})

t.test('dummyHash is a valid hash, computed once', async (t) => {
  const [a, b] = await Promise.all([dummyHash(), dummyHash()])
  t.equal(a, b)
  t.equal(await dummyHash(), a)
  t.match(a, SCRYPT_FORMAT)
  t.not(a, good, 'a fresh salt and password')
})

t.test('hash-password CLI prints a hash that verifies', async (t) => {
  const { io, out, err } = capture(Readable.from(['s3cret\n']))
  t.equal(await run([], io), 0)
  t.same(err, [])
  t.equal(out.length, 1)
  t.match(out[0], SCRYPT_FORMAT)
  t.equal(await verifyPassword('s3cret', out[0]!), true)
})

t.test('hash-password CLI input handling', async (t) => {
  const cases: Array<[string, string, Array<string | Buffer>]> = [
    ['one \\n', 'secret', ['secret\n']],
    ['one \\r\\n', 'secret', ['secret\r\n']],
    ['no newline', 'secret', ['secret']],
    ['only one of two newlines', 'secret\n', ['secret\n\n']],
    ['a lone \\r is kept', 'secret\r', ['secret\r']],
    ['spaces are kept', ' pass word ', [' pass word \n']],
    ['every chunk, UTF-8 split across chunks', 'pässwörd', splitBytes('pässwörd\n', [2, 7])]
  ]
  for (const [name, password, chunks] of cases) {
    t.equal(await readPassword(Readable.from(chunks)), password, name)
  }
})

function splitBytes (text: string, at: number[]): Buffer[] {
  const bytes = Buffer.from(text)
  return [0, ...at].map((start, i) => bytes.subarray(start, at[i]))
}

t.test('hash-password CLI refuses an empty password', async (t) => {
  for (const input of ['', '\n', '\r\n']) {
    const { io, out, err } = capture(Readable.from(input === '' ? [] : [input]))
    t.equal(await run([], io), 1, JSON.stringify(input))
    t.same(out, [])
    t.match(err, [/^error: /])
  }
  const { io } = capture()
  t.equal(await run([], io), 1, 'no stdin')
})

t.test('hash-password CLI usage', async (t) => {
  const { io, out, err } = capture(Readable.from(['pw']))
  t.equal(await run(['--password', 'pw'], io), 2, 'never takes the password as an argument')
  t.same(out, [])
  t.match(err, [/^error: /])
  const help = capture()
  t.equal(await run(['--help'], help.io), 0)
  t.match(help.out[0], /stdin/)
})
