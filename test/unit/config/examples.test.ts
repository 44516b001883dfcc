/**
 * The configs jotgate ships and the deployment examples that mount them:
 * config/gateway.yaml (the CLI's default), config/docker/gateway.yaml
 * (docker-compose.yml) and the gateway.yaml of the Kubernetes ConfigMap
 * each pass `jotgate check` once the keys and files they name exist; and
 * the compose file and Kubernetes manifests hold what they promise (the
 * sidecar pod: two containers, the service on loopback only, probes on
 * the admin port, resource limits, non-root).
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import t from 'tap'
import { parse, parseAllDocuments } from 'yaml'
import { run as check } from '../../../src/cli/check.js'
import { run as keysGenerate } from '../../../src/cli/keys-generate.js'
import type { CliIo } from '../../../src/cli/io.js'
import { loadConfigFile } from '../../../src/config/load.js'
import { toSeconds } from '../../../src/config/duration.js'
import { ROOT } from '../../helpers/root.js'

const CONFIG = join(ROOT, 'config')
/** Any hash the users file accepts: check reads the file, it verifies no password. */
const HASH = '$2b$04$xXlWVifNG6ubRPG1RC5r2uoRC7FSWdBy7cNOwZFGAcuRiM63QNVMy'

type Doc = Record<string, any>

function capture (env: NodeJS.ProcessEnv): { io: CliIo, out: string[], err: string[] } {
  const out: string[] = []
  const err: string[] = []
  return { io: { stdout: (l) => out.push(l), stderr: (l) => err.push(l), env }, out, err }
}

const dir = mkdtempSync(join(tmpdir(), 'jotgate-examples-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const keyDir = join(dir, 'keys')
const usersFile = join(keyDir, 'users.yaml')

t.before(async () => {
  // The signing key every example names (kid k1), made the way the README says.
  const { io, err } = capture({})
  const code = await keysGenerate(['--alg', 'ES256', '--kid', 'k1', '--out', keyDir], io)
  if (code !== 0) throw new Error(`keys generate failed: ${err.join('\n')}`)
  writeFileSync(usersFile, `users:\n  - username: alice\n    password: "${HASH}"\n    claims: { roles: [admin] }\n`)
})

/** Runs `jotgate check --config file` with `env`; returns exit code and output. */
async function runCheck (file: string, env: NodeJS.ProcessEnv): Promise<{ code: number, out: string[], err: string[] }> {
  const { io, out, err } = capture(env)
  const code = await check(['--config', file], io)
  return { code, out, err }
}

/** The environment a container or pod provides, pointed at the temp keys. */
const ENV = { JOTGATE_KEY_DIR: keyDir, JOTGATE_USERS_FILE: usersFile, ADMIN_TOKEN: 'x'.repeat(32), REDIS_URL: 'redis://redis.test:6379' }

const k8sDocs = (name: string): Doc[] => parseAllDocuments(readText(join(CONFIG, 'kubernetes', name))).map((d) => d.toJS() as Doc)
function readText (file: string): string {
  return readFileSync(file, 'utf8')
}

t.test('config/gateway.yaml: the default config passes check', async (t) => {
  const file = join(CONFIG, 'gateway.yaml')
  const result = await runCheck(file, ENV)
  t.same(result, { code: 0, out: ['ok'], err: [] }, 'ok, and no warning')

  // The CLI's default: no --config, no JOTGATE_CONFIG -> config/gateway.yaml
  // of the working directory (the repo root when tap runs).
  if (existsSync(resolve('config/gateway.yaml'))) {
    const { io, out } = capture(ENV)
    t.equal(await check([], io), 0, 'found without --config')
    t.same(out, ['ok'])
  }

  // Production defaults, each overridable from the environment.
  const { config } = loadConfigFile(file, ENV)
  t.equal(config.server.port, 8080)
  t.equal(config.admin?.host, '127.0.0.1', 'admin on loopback unless told otherwise')
  t.equal(config.admin?.port, 9090)
  t.equal(config.store.type, 'redis')
  t.equal(config.store.url, 'redis://redis.test:6379', 'REDIS_URL')
  t.equal(config.store.onError, 'deny', 'fail closed')
  t.equal(config.routes[0]?.upstream, 'http://127.0.0.1:3000', 'UPSTREAM_URL default')
  t.equal(config.routes[0]?.auth, 'required')
  t.equal(config.tokens.keys[0]?.privateKeyFile, join(keyDir, 'k1.key.pem'), 'JOTGATE_KEY_DIR')
  const env2 = { ...ENV, UPSTREAM_URL: 'http://10.0.0.7:8000', JOTGATE_PORT: '8443', JOTGATE_ADMIN_HOST: '0.0.0.0' }
  const other = loadConfigFile(file, env2).config
  t.equal(other.routes[0]?.upstream, 'http://10.0.0.7:8000')
  t.equal(other.server.port, 8443, 'a port from the environment is a number')
  t.equal(other.admin?.host, '0.0.0.0')
})

t.test('config/gateway.yaml: unusable keys, files and upstream URLs are refused, one line each', async (t) => {
  const file = join(CONFIG, 'gateway.yaml')
  const empty = mkdtempSync(join(dir, 'empty-'))
  const result = await runCheck(file, { ...ENV, JOTGATE_KEY_DIR: empty, JOTGATE_USERS_FILE: join(empty, 'users.yaml'), UPSTREAM_URL: 'ftp://files.example' })
  t.equal(result.code, 1)
  t.same(result.out, [], 'no ok')
  for (const re of [/^tokens\.keys\[0\]\.privateKeyFile: /, /^auth\.users\.file: /, /^routes\[0\]\.upstream: must be an http\(s\) URL$/]) {
    t.ok(result.err.some((line) => re.test(line)), `a line matching ${re}`)
  }
  t.ok(result.err.every((line) => /^[a-zA-Z_[\].0-9"-]+: \S/.test(line)), '`<key path>: <problem>` lines')
})

t.test('config/docker/gateway.yaml passes check', async (t) => {
  const result = await runCheck(join(CONFIG, 'docker', 'gateway.yaml'), ENV)
  t.same(result, { code: 0, out: ['ok'], err: [] })
  // ADMIN_TOKEN has no default there: compose must pass it.
  const { ADMIN_TOKEN: _unset, ...withoutToken } = ENV
  const missing = await runCheck(join(CONFIG, 'docker', 'gateway.yaml'), withoutToken)
  t.equal(missing.code, 1)
  t.match(missing.err.join('\n'), /^admin\.token: environment variable ADMIN_TOKEN is not set/m)
})

t.test('config/docker-compose.yml: jotgate built from the repo, Redis 7, the legacy service', async (t) => {
  const compose = parse(readText(join(CONFIG, 'docker-compose.yml'))) as Doc
  const { jotgate, redis, legacy } = compose.services as Record<string, Doc>
  t.ok(jotgate && redis && legacy, 'three services')
  t.equal(jotgate!.build.context, '..', 'built from the repo root')
  t.ok(existsSync(resolve(CONFIG, jotgate!.build.context as string, 'package.json')), 'the build context is the repo root')
  t.match(redis!.image, /^redis:7(\b|-|\.)/)
  const volumes = jotgate!.volumes as string[]
  t.ok(volumes.includes('./docker/gateway.yaml:/etc/jotgate/gateway.yaml:ro'), 'mounts the checked config')
  t.ok(volumes.some((v) => /:\/etc\/jotgate\/keys(:ro)?$/.test(v)), 'keys from a mounted folder')
  for (const v of [...volumes, ...(legacy!.volumes as string[])]) {
    const host = v.split(':')[0]!
    if (host.endsWith('/keys')) continue // made by `jotgate keys generate`, never committed
    t.ok(existsSync(resolve(CONFIG, host)), `${host} exists`)
  }
  t.equal(jotgate!.environment.JOTGATE_CONFIG, '/etc/jotgate/gateway.yaml')
  t.match(jotgate!.environment.ADMIN_TOKEN, /^\$\{ADMIN_TOKEN:\?/, 'the admin token comes from the environment, required')
  t.ok((jotgate!.ports as string[]).includes('127.0.0.1:9090:9090'), 'admin port on the host loopback only')
  t.equal(legacy!.ports, undefined, 'the legacy service publishes no port')
  t.ok(compose.networks.app.internal === true && compose.networks.store.internal === true, 'legacy and Redis on internal networks')
  t.ok(toSeconds(jotgate!.stop_grace_period as string) > 10, 'stop grace longer than server.shutdownGrace')
  const { config } = loadConfigFile(join(CONFIG, 'docker', 'gateway.yaml'), ENV)
  t.ok(toSeconds(jotgate!.stop_grace_period as string) > toSeconds(config.server.shutdownGrace), 'matches the mounted config')
  t.ok(config.routes.every((r) => r.upstream.startsWith('http://legacy:3000')), 'routes go to the legacy service')
  const syntax = spawnSync(process.execPath, ['--check', join(CONFIG, 'docker', 'legacy-service.mjs')], { encoding: 'utf8' })
  t.equal(syntax.status, 0, `the legacy service script parses ${syntax.stderr}`)
})

t.test('Kubernetes ConfigMap: its gateway.yaml passes check', async (t) => {
  const [configMap] = k8sDocs('configmap.yaml')
  t.equal(configMap!.kind, 'ConfigMap')
  const text = configMap!.data['gateway.yaml'] as string
  t.type(text, 'string')
  const file = join(dir, 'configmap-gateway.yaml')
  writeFileSync(file, text)
  const { JOTGATE_USERS_FILE: _users, ...env } = ENV
  t.same(await runCheck(file, env), { code: 0, out: ['ok'], err: [] })
})

t.test('Kubernetes sidecar: both containers, probes on the admin port, limits, non-root', async (t) => {
  const [deployment] = k8sDocs('sidecar-deployment.yaml')
  const [configMap] = k8sDocs('configmap.yaml')
  const [secret] = k8sDocs('secret.example.yaml')
  const [service] = k8sDocs('service.yaml')
  t.equal(deployment!.kind, 'Deployment')
  t.equal(secret!.kind, 'Secret')
  t.equal(service!.kind, 'Service')
  const configFile = join(dir, 'sidecar-gateway.yaml')
  writeFileSync(configFile, configMap!.data['gateway.yaml'] as string)
  const { config } = loadConfigFile(configFile, ENV)

  const pod = deployment!.spec.template.spec as Doc
  const containers = pod.containers as Doc[]
  t.equal(containers.length, 2, 'the service and jotgate in one pod')
  const jotgate = containers.find((c) => /jotgate/.test(c.image as string))!
  const app = containers.find((c) => c !== jotgate)!
  t.ok(jotgate && app)

  // The service: loopback only, no port exposed; jotgate forwards there.
  t.equal(app.ports, undefined, 'the service container exposes no port')
  const appEnv = Object.fromEntries((app.env as Doc[]).map((e) => [e.name, e.value]))
  t.same([appEnv.HOST, appEnv.PORT], ['127.0.0.1', '3000'], 'the service binds 127.0.0.1:3000')
  t.ok(config.routes.every((r) => r.upstream === 'http://127.0.0.1:3000'), 'every route goes to the service over loopback')

  // jotgate: 8080 for traffic, 9090 (admin) for probes.
  const ports = Object.fromEntries((jotgate.ports as Doc[]).map((p) => [p.name, p.containerPort]))
  t.equal(ports.http, config.server.port)
  t.equal(ports.admin, config.admin?.port)
  t.equal(config.admin?.host, '0.0.0.0', 'the kubelet reaches the admin port on the pod IP')
  const portOf = (p: string | number) => (typeof p === 'number' ? p : ports[p])
  t.equal(jotgate.livenessProbe.httpGet.path, '/healthz')
  t.equal(portOf(jotgate.livenessProbe.httpGet.port), 9090, 'liveness on the admin port')
  t.equal(jotgate.readinessProbe.httpGet.path, '/readyz')
  t.equal(portOf(jotgate.readinessProbe.httpGet.port), 9090, 'readiness on the admin port')

  for (const c of containers) {
    t.ok(c.resources?.limits?.cpu !== undefined && c.resources?.limits?.memory !== undefined, `${c.name as string}: cpu and memory limits`)
    t.ok(c.resources?.requests?.memory !== undefined, `${c.name as string}: memory request`)
    t.ok(c.securityContext?.runAsNonRoot === true || pod.securityContext?.runAsNonRoot === true, `${c.name as string}: runAsNonRoot`)
    t.equal(c.securityContext?.allowPrivilegeEscalation, false, `${c.name as string}: no privilege escalation`)
  }
  t.equal(pod.securityContext.runAsNonRoot, true, 'pod-level runAsNonRoot')

  // Config, keys and secrets reach jotgate where the config expects them.
  const env = Object.fromEntries((jotgate.env as Doc[]).map((e) => [e.name, e]))
  const mounts = Object.fromEntries((jotgate.volumeMounts as Doc[]).map((m) => [m.name, m.mountPath]))
  const volumes = Object.fromEntries((pod.volumes as Doc[]).map((v) => [v.name, v]))
  // The entrypoint passes --config /etc/jotgate/gateway.yaml; the pod's args add a later one, which wins.
  const args = jotgate.args as string[]
  t.equal(args[args.lastIndexOf('--config') + 1], `${mounts.config as string}/gateway.yaml`, 'the last --config names the mounted ConfigMap file')
  t.equal(volumes.config.configMap.name, configMap!.metadata.name)
  t.equal(env.JOTGATE_KEY_DIR.value, mounts.keys)
  t.equal(volumes.keys.secret.secretName, secret!.metadata.name)
  const secretKeys = Object.keys(secret!.stringData as Doc)
  for (const item of volumes.keys.secret.items as Doc[]) t.ok(secretKeys.includes(item.key as string), `secret item ${item.key as string} exists`)
  for (const name of ['ADMIN_TOKEN', 'REDIS_URL']) {
    const ref = env[name].valueFrom.secretKeyRef
    t.equal(ref.name, secret!.metadata.name, `${name} from the Secret`)
    t.ok(secretKeys.includes(ref.key as string), `${name}: key ${ref.key as string} in the Secret`)
  }

  // Shutdown: the drain fits in the grace period.
  const preStop = jotgate.lifecycle?.preStop?.sleep?.seconds ?? 0
  t.ok(pod.terminationGracePeriodSeconds > preStop + toSeconds(config.server.shutdownGrace), 'terminationGracePeriodSeconds covers preStop + shutdownGrace')

  // The Service selects the pod and targets jotgate's traffic port only.
  const labels = deployment!.spec.template.metadata.labels as Record<string, string>
  t.ok(Object.entries(service!.spec.selector as Record<string, string>).every(([k, v]) => labels[k] === v), 'the Service selects the pod')
  t.same((service!.spec.ports as Doc[]).map((p) => p.targetPort), ['http'], 'only the http port is exposed')
  t.same(deployment!.spec.selector.matchLabels, { 'app.kubernetes.io/name': labels['app.kubernetes.io/name'] })
})
