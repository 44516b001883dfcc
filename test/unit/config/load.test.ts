import t from 'tap'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadConfigFile, loadConfigObject, resolveConfigFile } from '../../../src/config/load.js'
import { toMs, toSeconds } from '../../../src/config/duration.js'
import { problemLines, route, tempDir, writeFile } from './helpers.js'

const DURATION_MESSAGE = 'must be a duration like 30s, 10m, 7d or a whole number of seconds'

/** Loads `text` as a config file with `env`. */
function loadText (t: Parameters<typeof tempDir>[0], text: string, env: NodeJS.ProcessEnv = {}, name = 'gateway.yaml') {
  return loadConfigFile(writeFile(tempDir(t), name, text), env)
}

t.test('${VAR} substitution', async (t) => {
  const cases: Array<[string, NodeJS.ProcessEnv, string]> = [
    ['set', { PREFIX: 'from-env:' }, 'from-env:'],
    ['unset, with default', {}, 'fallback:'],
    ['empty, with default: the default', { PREFIX: '' }, 'fallback:'],
    ['set, with default: the value', { PREFIX: 'x:' }, 'x:']
  ]
  for (const [name, env, expected] of cases) {
    const text = name.includes('with default') ? 'store:\n  keyPrefix: ${PREFIX:-fallback:}\n' : 'store:\n  keyPrefix: "${PREFIX}"\n'
    t.equal(loadText(t, text, env).config.store.keyPrefix, expected, name)
  }
  t.equal(loadText(t, 'store:\n  keyPrefix: a-${A}-b-${B:-2}\n', { A: '1' }).config.store.keyPrefix, 'a-1-b-2', 'several in one value')
})

t.test('${VAR}: an empty value without default stays empty', async (t) => {
  t.equal(loadText(t, 'store:\n  keyPrefix: "${PREFIX}"\n', { PREFIX: '' }).config.store.keyPrefix, '')
})

t.test('${VAR} unset without default: a problem naming the variable, at its key path', async (t) => {
  const lines = problemLines(() => loadText(t, 'store:\n  keyPrefix: ${JG_UNSET_PREFIX}\nadmin:\n  token: ${JG_UNSET_TOKEN}\n'))
  t.equal(lines.length, 2)
  t.match(lines[0], /^store\.keyPrefix: .*JG_UNSET_PREFIX/)
  t.match(lines[1], /^admin\.token: .*JG_UNSET_TOKEN/)
  t.same(problemLines(() => loadText(t, 'routes:\n  - path: /\n    upstream: ${JG_UNSET_UP}\n')), [
    'routes[0].upstream: environment variable JG_UNSET_UP is not set and has no default (set it, or write ${JG_UNSET_UP:-default})'
  ])
})

t.test('$${X} is a literal ${X}', async (t) => {
  const { config } = loadText(t, 'store:\n  keyPrefix: "$${HOME}:$${X:-y}"\n', { HOME: '/root' })
  t.equal(config.store.keyPrefix, '${HOME}:${X:-y}')
})

t.test('the contract example `token: ${ADMIN_TOKEN:-}` loads with the variable unset', async (t) => {
  const { config } = loadText(t, 'admin:\n  token: ${ADMIN_TOKEN:-}\n')
  t.equal(config.admin?.token, '')
})

t.test('a substituted value is never read as YAML', async (t) => {
  const values = ['abc #not-a-comment', 'a: b', '"quoted"', "it's", '&anchor x', '*alias', 'back\\nslash', 'two\nlines', '[1, 2]', '{a: 1}', '| block']
  for (const value of values) {
    const plain = loadText(t, 'admin:\n  token: ${ADMIN_TOKEN}\n', { ADMIN_TOKEN: value }).config.admin?.token
    const quoted = loadText(t, 'admin:\n  token: "${ADMIN_TOKEN}"\n', { ADMIN_TOKEN: value }).config.admin?.token
    const flow = loadText(t, 'admin: { token: ${ADMIN_TOKEN} }\n', { ADMIN_TOKEN: value }).config.admin?.token
    t.same([plain, quoted, flow], [value, value, value], JSON.stringify(value))
  }
})

t.test('unquoted substitutions are typed like the text they hold', async (t) => {
  const { config } = loadText(t, 'server:\n  port: ${PORT:-8081}\n  trustProxy: ${TRUST:-false}\n  host: "${HOST:-127.0.0.1}"\n', { TRUST: 'true' })
  t.equal(config.server.port, 8081)
  t.equal(config.server.trustProxy, true)
  t.equal(config.server.host, '127.0.0.1')
  // Quoted, the value stays a string, as YAML would have it.
  t.same(problemLines(() => loadText(t, 'server:\n  port: "${PORT:-8081}"\n')), ['server.port: must be a whole number'])
})

t.test('references in comments are ignored', async (t) => {
  const { config } = loadText(t, '# token: ${JG_UNSET_IN_COMMENT}\nserver:\n  port: 0 # ${JG_ALSO_UNSET}\n')
  t.equal(config.server.port, 0)
})

t.test('JSON: an unquoted reference is filled in too', async (t) => {
  const { config } = loadText(t, '{"server": {"port": ${PORT}}}', { PORT: '7001' }, 'gateway.json')
  t.equal(config.server.port, 7001)
})

t.test('durations', async (t) => {
  t.equal(toMs('30s'), 30_000)
  t.equal(toMs('10m'), 600_000)
  t.equal(toMs('7d'), 7 * 86_400_000)
  t.equal(toMs('250ms'), 250)
  t.equal(toMs(7), 7000, 'an integer is seconds')
  t.equal(toSeconds('1500ms'), 2, 'whole seconds, rounded up')
  t.throws(() => toMs('5x'), TypeError)

  const ok = loadConfigObject({ server: { requestTimeout: '30s', upstreamTimeout: 7 }, tokens: { accessTtl: '10m', refreshTtl: '7d' } }, '/')
  t.equal(toMs(ok.config.server.upstreamTimeout), 7000)
  t.equal(ok.config.tokens.accessTtl, '10m')

  const bad: Array<[string, unknown]> = [['5x', '5x'], ['negative', -1], ['fraction', 1.5], ['spaces', '10 m'], ['bare unit', 's']]
  for (const [name, value] of bad) {
    t.same(problemLines(() => loadConfigObject({ server: { requestTimeout: value } }, '/')), [`server.requestTimeout: ${DURATION_MESSAGE}`], name)
  }
})

t.test('unknown keys at every depth', async (t) => {
  const lines = problemLines(() => loadConfigObject({
    foo: 1,
    server: { foo: true },
    tokens: { keys: [{ kid: 'h', alg: 'HS256', secret: 'x'.repeat(32), extra: 1 }] },
    routes: [route(), route({ bar: 'x' }), route({ path: '/r', require: { rolez: ['a'] } })]
  }, '/'))
  t.same(lines.sort(), [
    'foo: unknown key',
    'routes[1].bar: unknown key',
    'routes[2].require.rolez: unknown key',
    'server.foo: unknown key',
    'tokens.keys[0].extra: unknown key'
  ])
})

t.test('wrong types: the key path and what it must be', async (t) => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['integer', { server: { port: 'eighty' } }, 'server.port: must be a whole number'],
    ['range', { server: { port: 70000 } }, 'server.port: must be at most 65535'],
    ['boolean', { server: { trustProxy: 'yes' } }, 'server.trustProxy: must be true or false'],
    ['mapping', { store: 'redis' }, 'store: must be a mapping'],
    ['list', { tokens: { audience: 'api' } }, 'tokens.audience: must be a list'],
    ['string', { routes: [route({ upstream: 5 })] }, 'routes[0].upstream: must be a string'],
    ['empty string', { server: { host: '' } }, 'server.host: must not be empty'],
    ['enum', { routes: [route({ auth: 'maybe' })] }, 'routes[0].auth: must be one of none, optional, required'],
    ['algorithm', { tokens: { keys: [{ kid: 'k', alg: 'none' }] } }, 'tokens.keys[0].alg: must be one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA'],
    ['store type', { store: { type: 'etcd' } }, 'store.type: must be redis or memory'],
    ['onError', { store: { onError: 'ignore' } }, 'store.onError: must be deny or allow'],
    ['path', { routes: [route({ path: 'api' })] }, 'routes[0].path: must be a path starting with /'],
    ['required', { routes: [{ path: '/' }] }, 'routes[0].upstream: is required'],
    ['header map value', { claimHeaders: { 'X-User-Id': 5 } }, 'claimHeaders["X-User-Id"]: must be a string']
  ]
  for (const [name, raw, line] of cases) t.same(problemLines(() => loadConfigObject(raw, '/')), [line], name)
  t.same(problemLines(() => loadConfigObject([], '/')), ['the config must be a mapping (YAML object)'])
})

t.test('every schema problem is reported at once, one per key', async (t) => {
  const lines = problemLines(() => loadConfigObject({ server: { port: -1, host: '' }, routes: [route({ auth: 1, bar: 2 })] }, '/'))
  t.same(lines.sort(), ['routes[0].auth: must be one of none, optional, required', 'routes[0].bar: unknown key', 'server.host: must not be empty', 'server.port: must be at least 0'])
})

t.test('defaults', async (t) => {
  const { config, warnings, file } = loadConfigObject({ routes: [{ path: '/', upstream: 'http://127.0.0.1:1' }], tokens: { issuer: 'https://i', audience: ['api'], keys: [{ kid: 'h', alg: 'HS256', secret: 'x'.repeat(32) }] } }, '/')
  t.equal(file, '')
  t.same(warnings, [])
  t.equal(config.server.port, 8080)
  t.equal(config.server.host, '0.0.0.0')
  t.equal(config.server.trustProxy, false)
  t.equal(config.server.maxHeaderBytes, 16384)
  t.equal(config.store.type, 'redis')
  t.equal(config.store.url, 'redis://127.0.0.1:6379')
  t.equal(config.store.keyPrefix, 'jotgate:')
  t.equal(config.store.onError, 'deny')
  t.equal(config.tokens.accessTtl, '10m')
  t.equal(config.tokens.clockTolerance, '30s')
  t.equal(config.tokens.maxTokenBytes, 8192)
  t.same(config.claimHeaders, { 'X-User-Id': 'sub', 'X-User-Roles': 'roles', 'X-Client-Id': 'azp' })
  t.same(config.stripHeaders, ['X-User-*', 'X-Client-Id', 'X-Jwt-*'])
  t.equal(config.routes[0]!.auth, 'required')
  t.equal(config.routes[0]!.forwardAuthorization, false)
  t.equal(config.admin, undefined, 'no admin block: no admin listener')
  t.same(loadConfigObject({ admin: {} }, '/').config.admin, { host: '127.0.0.1', port: 9090, token: '' })
})

t.test('relative key paths resolve against the config file directory', async (t) => {
  const dir = tempDir(t)
  const secretDir = join(dir, 'keys')
  mkdirSync(secretDir)
  writeFile(secretDir, 'h.secret', Buffer.alloc(32, 7))
  const file = writeFile(dir, 'gateway.yaml', [
    'tokens:',
    '  issuer: https://i',
    '  audience: [api]',
    '  keys:',
    '    - { kid: h, alg: HS256, secretFile: keys/h.secret }',
    'routes:',
    '  - { path: /, upstream: "http://127.0.0.1:1" }'
  ].join('\n'))
  const loaded = loadConfigFile(file, {})
  t.equal(loaded.file, file)
  t.equal(loaded.config.tokens.keys[0]!.secretFile, join(secretDir, 'h.secret'))
  // The same text elsewhere: the key file is not found there.
  const other = writeFile(tempDir(t), 'gateway.yaml', readFileSync(file, 'utf8'))
  t.match(problemLines(() => loadConfigFile(other, {})), [/^tokens\.keys\[0\]\.secretFile: cannot read .*keys\/h\.secret \(ENOENT\)$/])
  // loadConfigObject resolves against the directory it is given.
  const raw = { tokens: { issuer: 'https://i', keys: [{ kid: 'h', alg: 'HS256', secretFile: 'keys/h.secret' }] } }
  t.equal(loadConfigObject(raw, dir).config.tokens.keys[0]!.secretFile, join(secretDir, 'h.secret'))
})

t.test('YAML and JSON load to the same config', async (t) => {
  const dir = tempDir(t)
  const yaml = writeFile(dir, 'gateway.yaml', 'server:\n  port: 1234\nroutes:\n  - path: /public\n    upstream: http://127.0.0.1:3000\n    auth: none\n')
  const json = writeFile(dir, 'gateway.json', JSON.stringify({ server: { port: 1234 }, routes: [{ path: '/public', upstream: 'http://127.0.0.1:3000', auth: 'none' }] }))
  t.same(loadConfigFile(yaml, {}).config, loadConfigFile(json, {}).config)
})

t.test('unreadable and unparseable files', async (t) => {
  const dir = tempDir(t)
  t.match(problemLines(() => loadConfigFile(join(dir, 'missing.yaml'), {})), [/^cannot read config file .*missing\.yaml: ENOENT$/])
  t.match(problemLines(() => loadConfigFile(writeFile(dir, 'bad.yaml', 'server: [1,\n'), {})), [/^not valid YAML or JSON: /])
  t.match(problemLines(() => loadConfigFile(writeFile(dir, 'dup.yaml', 'server: {}\nserver: {}\n'), {})), [/^not valid YAML or JSON: .*unique/i])
  t.equal(loadConfigFile(writeFile(dir, 'empty.yaml', ''), {}).config.server.port, 8080, 'an empty file is the defaults')
})

t.test('the result is deep-frozen', async (t) => {
  const { config } = loadConfigObject({ routes: [route({ require: undefined })], admin: {} }, '/')
  t.ok(Object.isFrozen(config))
  t.ok(Object.isFrozen(config.server))
  t.ok(Object.isFrozen(config.routes))
  t.ok(Object.isFrozen(config.routes[0]))
  t.ok(Object.isFrozen(config.claimHeaders))
  t.ok(Object.isFrozen(config.stripHeaders))
  t.throws(() => { (config.server as { port: number }).port = 1 }, TypeError)
  t.throws(() => { (config.routes as unknown[]).push({}) }, TypeError)
})

t.test('the input object is not modified', async (t) => {
  const raw = { server: { port: 1 } }
  loadConfigObject(raw, '/')
  t.same(raw, { server: { port: 1 } })
  t.notOk(Object.isFrozen(raw.server))
})

t.test('resolveConfigFile: --config, then $JOTGATE_CONFIG, then config/gateway.yaml', async (t) => {
  t.equal(resolveConfigFile('/a.yaml', { JOTGATE_CONFIG: '/b.yaml' }), '/a.yaml')
  t.equal(resolveConfigFile(undefined, { JOTGATE_CONFIG: '/b.yaml' }), '/b.yaml')
  t.equal(resolveConfigFile(undefined, {}), join(process.cwd(), 'config/gateway.yaml'))
})
