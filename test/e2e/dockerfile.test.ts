/**
 * The Dockerfile, without a Docker engine: its runtime stage is read, and
 * the exact ENTRYPOINT (+ CMD) command line runs from the repository root
 * (standing in for the WORKDIR), with only the config path swapped for a
 * temp file. The HEALTHCHECK command runs too, against the admin port.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { builtinModules } from 'node:module'
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { REDIS_URL, uniquePrefix } from '../helpers/redis.js'
import { ROOT, assertBuilt, listening, spawnCli } from './cli-process.js'

const IMAGE_CONFIG = '/etc/jotgate/gateway.yaml'

interface Instruction { op: string, args: string }

/** Instructions of the Dockerfile: continuations joined, comments dropped. */
function parseDockerfile (text: string): Instruction[] {
  const out: Instruction[] = []
  let current = ''
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (current === '' && (line === '' || line.startsWith('#'))) continue
    if (line.startsWith('#')) continue // a comment inside a continuation
    if (line.endsWith('\\')) { current += `${line.slice(0, -1)} `; continue }
    current += line
    const match = /^(\S+)\s*(.*)$/s.exec(current)!
    out.push({ op: match[1]!.toUpperCase(), args: match[2]!.trim() })
    current = ''
  }
  return out
}

/** Splits instructions into stages at each FROM. */
function stages (instructions: Instruction[]): Instruction[][] {
  const out: Instruction[][] = []
  for (const i of instructions) {
    if (i.op === 'FROM') out.push([])
    out.at(-1)?.push(i)
  }
  return out
}

const jsonArray = (args: string, what: string): string[] => {
  const value: unknown = JSON.parse(args)
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw new Error(`${what} must be a JSON array of strings`)
  return value as string[]
}

const instructions = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))
const all = stages(instructions)
const build = all[0]!
const runtime = all.at(-1)!
const last = (op: string) => runtime.filter((i) => i.op === op).at(-1)

t.test('build stage: npm ci, build, prune dev dependencies', async (t) => {
  t.ok(all.length >= 2, 'multi-stage')
  t.match(build[0]!.args, /^node:20-(bookworm-slim|alpine)\b/)
  const runs = build.filter((i) => i.op === 'RUN').map((i) => i.args).join(' && ')
  t.match(runs, /\bnpm ci\b/)
  t.match(runs, /\bnpm run build\b/)
  t.match(runs, /\bnpm prune --omit=dev\b/)
})

t.test('runtime stage: slim base, production, non-root, ports, healthcheck', async (t) => {
  t.match(runtime[0]!.args, /^node:20-(bookworm-slim|alpine)\b/)
  const copies = runtime.filter((i) => i.op === 'COPY').map((i) => i.args)
  for (const what of ['package.json', 'node_modules', 'dist', 'config']) {
    t.ok(copies.some((c) => c.split(/\s+/).some((part) => part.replace(/\/$/, '').endsWith(what))), `copies ${what}`)
  }
  t.ok(runtime.some((i) => i.op === 'ENV' && /\bNODE_ENV=production\b/.test(i.args)), 'NODE_ENV=production')
  const user = last('USER')
  t.ok(user !== undefined, 'a USER instruction')
  t.notMatch(user?.args ?? 'root', /^(root|0)(:|$)/, 'the user is not root')
  const exposed = runtime.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(/\s+/))
  t.ok(exposed.includes('8080') && exposed.includes('9090'), 'EXPOSE 8080 9090')
  const health = last('HEALTHCHECK')
  t.ok(health !== undefined, 'a HEALTHCHECK')
  t.match(health?.args, /\bCMD\s+\[/)
  t.notMatch(health?.args, /\b(curl|wget)\b/, 'no curl or wget in a slim image')
  t.match(health?.args, /127\.0\.0\.1:9090\/healthz/)
})

t.test('the ENTRYPOINT starts the gateway and SIGTERM stops it with 0', async (t) => {
  assertBuilt()
  const workdir = last('WORKDIR')?.args
  t.ok(workdir !== undefined && workdir.startsWith('/'), 'an absolute WORKDIR')
  const entrypoint = jsonArray(last('ENTRYPOINT')!.args, 'ENTRYPOINT')
  const cmd = last('CMD') === undefined ? [] : jsonArray(last('CMD')!.args, 'CMD')
  const argv = [...entrypoint, ...cmd]
  t.equal(argv[0], 'node')
  t.ok(argv.includes(IMAGE_CONFIG), `the command names ${IMAGE_CONFIG}`)

  const dir = mkdtempSync(join(tmpdir(), 'jotgate-docker-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const config = join(dir, 'gateway.yaml')
  writeFileSync(config, stringify({
    server: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    store: { type: 'redis', url: REDIS_URL, keyPrefix: uniquePrefix('e2e-docker') },
    routes: [{ path: '/', upstream: 'http://127.0.0.1:9', auth: 'none' }]
  }))
  // The WORKDIR is the repository root here; absolute paths under it map onto it.
  const local = argv.slice(1).map((a) => a === IMAGE_CONFIG ? config : a.startsWith(`${workdir}/`) ? join(ROOT, a.slice(workdir!.length + 1)) : a)
  const gateway = spawnCli(process.execPath, local, { cwd: ROOT, env: { NODE_ENV: 'production' } })
  t.teardown(() => gateway.signal('SIGKILL'))
  const { adminPort } = await listening(gateway)
  t.type(adminPort, 'number')

  // The HEALTHCHECK command itself, pointed at the admin port actually bound.
  const health = last('HEALTHCHECK')!.args.replace(/^.*?\bCMD\s+/s, '')
  const check = jsonArray(health, 'HEALTHCHECK CMD').map((a) => a.replace('127.0.0.1:9090', `127.0.0.1:${adminPort}`))
  t.equal(check[0], 'node')
  const healthy = await new Promise<number | null>((resolve) => {
    spawn(process.execPath, check.slice(1), { stdio: 'ignore' }).once('close', resolve)
  })
  t.equal(healthy, 0, 'the HEALTHCHECK passes against a running gateway')

  gateway.signal('SIGTERM')
  t.same(await gateway.exited, { code: 0, signal: null })
})

t.test('.dockerignore keeps local builds, tests and git out of the context', async (t) => {
  const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  for (const entry of ['node_modules', 'dist', '.git', 'test', 'bench']) t.ok(ignored.includes(entry), entry)
  t.notOk(ignored.some((l) => /^(src|config|package(-lock)?\.json|tsconfig\.json)\/?$/.test(l)), 'nothing the build needs')
})

t.test('the pruned image has every package dist/ imports (npm prune --omit=dev)', async (t) => {
  assertBuilt()
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }
  const deps = new Set(Object.keys(pkg.dependencies ?? {}))
  const imported = new Set<string>()
  const files = (readdirSync(join(ROOT, 'dist'), { recursive: true }) as string[]).filter((f) => f.endsWith('.js'))
  for (const f of files) {
    const text = readFileSync(join(ROOT, 'dist', f), 'utf8')
    // `... from 'x'` ending a line, `import 'x'` opening one, and `import('x')`.
    const specifiers = /\bfrom\s*['"]([^'"./\n][^'"\n]*)['"];?\s*$|^\s*import\s*['"]([^'"./\n][^'"\n]*)['"]|\bimport\(\s*['"]([^'"./\n][^'"\n]*)['"]\s*\)/gm
    for (const m of text.matchAll(specifiers)) {
      const spec = (m[1] ?? m[2] ?? m[3])!
      if (spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0]!)) continue
      imported.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!)
    }
  }
  t.ok(imported.has('fastify') && imported.has('ioredis'), 'the scan finds the imports')
  t.same([...imported].filter((name) => !deps.has(name)).sort(), [], 'imported at run time but not in dependencies')
})
