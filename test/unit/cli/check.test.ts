import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { run } from '../../../src/cli/check.js'
import { main } from '../../../src/cli/index.js'
import type { CliIo } from '../../../src/cli/io.js'
import { KEYS, ISSUER, AUDIENCE } from '../../helpers/zoo.js'

function capture (env: NodeJS.ProcessEnv = {}): { io: CliIo, out: string[], err: string[] } {
  const out: string[] = []
  const err: string[] = []
  return { io: { stdout: (l) => out.push(l), stderr: (l) => err.push(l), env }, out, err }
}

const dir = mkdtempSync(join(tmpdir(), 'jotgate-check-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

function configFile (name: string, text: string): string {
  const file = join(dir, name)
  writeFileSync(file, text)
  return file
}

const GOOD = configFile('good.yaml', `
server: { host: 127.0.0.1, port: 0 }
store: { type: redis, url: "redis://127.0.0.1:6379" }
tokens:
  issuer: ${ISSUER}
  audience: [${AUDIENCE}]
  keys:
    - ${JSON.stringify(KEYS.es256!.config)}
    - ${JSON.stringify(KEYS.rs256!.config)}
    - ${JSON.stringify(KEYS.hs256!.config)}
routes:
  - { path: /public, upstream: "http://127.0.0.1:3000", auth: none }
  - { path: /, upstream: "http://127.0.0.1:3000" }
`)

t.test('a good config: exit 0 and ok', async (t) => {
  const { io, out, err } = capture()
  t.equal(await run(['--config', GOOD], io), 0)
  t.same(out, ['ok'])
  t.same(err, [])
})

t.test('-c and $JOTGATE_CONFIG name the file too', async (t) => {
  const short = capture()
  t.equal(await run(['-c', GOOD], short.io), 0)
  t.same(short.out, ['ok'])
  const fromEnv = capture({ JOTGATE_CONFIG: GOOD })
  t.equal(await run([], fromEnv.io), 0)
  t.same(fromEnv.out, ['ok'])
})

t.test('a broken config: exit 1, one `<key path>: <what is wrong>` line per problem', async (t) => {
  const file = configFile('broken.yaml', `
server: { port: 0, colour: blue }
tokens:
  issuer: ${ISSUER}
  keys:
    - ${JSON.stringify(KEYS.es256!.config)}
    - ${JSON.stringify(KEYS.hs256!.config)}
routes:
  - { path: /, upstream: "localhost:3000" }
`)
  const first = capture()
  t.equal(await run(['--config', file], first.io), 1)
  t.same(first.out, [], 'nothing on stdout: no ok')
  t.same(first.err, ['server.colour: unknown key'], 'schema problems first')

  // Schema-valid, three cross-field problems reported together.
  const cross = configFile('cross.yaml', `
tokens:
  issuer: ${ISSUER}
  audience: [api]
  keys:
    - ${JSON.stringify(KEYS.es256!.config)}
    - ${JSON.stringify({ ...KEYS.hs256!.config, kid: 'es256' })}
routes:
  - { path: /, upstream: "localhost:3000" }
  - { path: /a, upstream: "ftp://x" }
`)
  const { io, out, err } = capture()
  t.equal(await run(['--config', cross], io), 1)
  t.same(out, [])
  t.same(err, [
    'tokens.keys[1].kid: duplicate kid "es256"',
    'routes[0].upstream: must be an http(s) URL',
    'routes[1].upstream: must be an http(s) URL'
  ])
})

t.test('the keys it names are checked', async (t) => {
  const file = configFile('keys.yaml', `
tokens:
  issuer: ${ISSUER}
  audience: [api]
  keys:
    - { kid: a, alg: ES256, publicKeyFile: missing.pub.pem }
    - { kid: b, alg: HS256, secret: too-short }
`)
  const { io, err } = capture()
  t.equal(await run(['--config', file], io), 1)
  t.same(err, [
    `tokens.keys[0].publicKeyFile: cannot read ${join(dir, 'missing.pub.pem')} (ENOENT)`,
    'tokens.keys[1].secret: is 9 bytes; HS256 needs at least 32 (RFC 7518 section 3.2)'
  ])
})

t.test('an unset variable is a problem naming it', async (t) => {
  const file = configFile('env.yaml', 'admin:\n  token: ${JG_CHECK_UNSET}\n')
  const { io, err } = capture()
  t.equal(await run(['--config', file], io), 1)
  t.equal(err.length, 1)
  t.match(err[0], /^admin\.token: .*JG_CHECK_UNSET/)
  const set = capture({ JG_CHECK_UNSET: 'secret-token' })
  t.equal(await run(['--config', file], set.io), 0, 'the variable comes from io.env')
})

t.test('warnings go to stderr; the config is still ok', async (t) => {
  const file = configFile('warn.yaml', 'store: { type: memory, onError: allow }\nroutes:\n  - { path: /, upstream: "http://127.0.0.1:1", auth: none }\n')
  const { io, out, err } = capture()
  t.equal(await run(['--config', file], io), 0)
  t.same(out, ['ok'])
  t.match(err, [/^warning: store\.type: .*\(JOTGATE_W_MEMORY_STORE\)$/, /^warning: store\.onError: .*\(JOTGATE_W_FAIL_OPEN\)$/])
})

t.test('a missing file: exit 1 with the reason', async (t) => {
  const { io, err } = capture()
  t.equal(await run(['--config', join(dir, 'nope.yaml')], io), 1)
  t.match(err, [/^cannot read config file .*nope\.yaml: ENOENT$/])
})

t.test('usage errors: exit 2', async (t) => {
  for (const args of [['--colour'], ['--config'], ['--config', GOOD, 'extra']]) {
    const { io, out, err } = capture()
    t.equal(await run(args, io), 2, args.join(' '))
    t.same(out, [])
    t.match(err, [/^error: /])
  }
})

t.test('through the CLI entry point', async (t) => {
  const ok = capture()
  t.equal(await main(['check', '--config', GOOD], ok.io), 0)
  t.same(ok.out, ['ok'])
  const unknown = capture()
  t.equal(await main(['chek'], unknown.io), 2)
})

t.test('the entry point: usage and version', async (t) => {
  const none = capture()
  t.equal(await main([], none.io), 2, 'no command: a usage error')
  t.same(none.out, [])
  t.match(none.err.join('\n'), /^usage: jotgate <command>/)
  const help = capture()
  t.equal(await main(['--help'], help.io), 0)
  t.match(help.out.join('\n'), /^usage: jotgate <command>/)
  const version = capture()
  t.equal(await main(['--version'], version.io), 0)
  t.match(version.out, [/^[0-9]+\.[0-9]+\.[0-9]+/])
})
