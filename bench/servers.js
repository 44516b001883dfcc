/**
 * The benchmark's servers, each in its own process so that its CPU time and
 * RSS can be read from /proc/<pid>. Started by run.js with fork():
 *
 *   node bench/servers.js upstream
 *   node bench/servers.js baseline <upstream url>
 *   node bench/servers.js jotgate <config.json>
 *
 * Each answers `{ type: 'ready', port, adminPort }` over IPC once it
 * listens, answers `{ type: 'stats' }` (every server: its garbage
 * collections so far and the V8 heap in use; upstream: connections and
 * requests so far) and `{ type: 'reload' }` (jotgate: what SIGHUP does), and exits 0
 * after `{ type: 'stop' }` (jotgate through its own graceful shutdown, so
 * that `--cpu-prof` writes its profile).
 */
import { fork } from 'node:child_process'
import { createServer } from 'node:http'
import { PerformanceObserver, constants } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'

const SELF = fileURLToPath(import.meta.url)
const DIST = new URL('../dist/', import.meta.url)

/** A small fixed JSON body, keep-alive (Node's default). */
const BODY = Buffer.from('{"ok":true,"service":"upstream"}\n')

/** @returns {Promise<{ port: number, stop: () => Promise<void>, stats: () => Record<string, number> }>} */
async function startUpstream () {
  // Counted so that a run can tell whether the proxy reuses its upstream
  // connections (a new connection per request would be a finding).
  let connections = 0
  let requests = 0
  const server = createServer((req, res) => {
    requests++
    // Drain any request body before answering (GET has none).
    req.resume()
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length })
    res.end(BODY)
  })
  server.keepAliveTimeout = 60_000
  server.on('connection', () => { connections++ })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)))
  return { port: addressPort(server.address()), stats: () => ({ connections, requests }), stop: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }) }
}

/**
 * The baseline: fastify with @fastify/http-proxy, default options, nothing
 * else (no logger, no hooks).
 * @param {string} upstream
 */
async function startBaseline (upstream) {
  const { default: Fastify } = await import('fastify')
  const { default: proxy } = await import('@fastify/http-proxy')
  const app = Fastify()
  await app.register(proxy, { upstream })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { port: addressPort(app.server.address()), stop: () => app.close() }
}

/**
 * jotgate through the same path as `jotgate start`: load the file, build
 * the pino logger (stdout is /dev/null here: the per-request log line is
 * serialized and written, as in production, but nobody reads it), run.
 * @param {string} file
 */
async function startJotgate (file) {
  const { loadConfigFile } = await import(new URL('config/load.js', DIST).href)
  const { createLogger } = await import(new URL('log.js', DIST).href)
  const { runGateway } = await import(new URL('server.js', DIST).href)
  const loaded = loadConfigFile(file)
  const log = createLogger({ level: loaded.config.log.level })
  const running = await runGateway(loaded, log)
  return {
    port: running.ports.server,
    adminPort: running.ports.admin,
    stop: () => running.shutdown('bench-stop'),
    // Token verifications so far (the metrics' counts): misses are the
    // signature checks a window made.
    stats: () => ({ tokenHits: running.gateway.metrics.verifications.hit, tokenMisses: running.gateway.metrics.verifications.miss }),
    // What SIGHUP does: a new generation, so an empty verified-token cache.
    reload: () => running.reload()
  }
}

/** @param {ReturnType<import('node:net').Server['address']>} address */
function addressPort (address) {
  return typeof address === 'object' && address !== null ? address.port : 0
}

/**
 * Garbage collections of this process so far: scavenges (minor) and the
 * rest (mark-compact, incremental marking), counts and milliseconds.
 */
function watchGc () {
  const gc = { minorCount: 0, minorMs: 0, majorCount: 0, majorMs: 0 }
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const { detail } = /** @type {{ detail?: { kind?: number } }} */ (/** @type {unknown} */ (entry))
      if (detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) {
        gc.minorCount++
        gc.minorMs += entry.duration
      } else if (detail?.kind !== constants.NODE_PERFORMANCE_GC_WEAKCB) {
        gc.majorCount++
        gc.majorMs += entry.duration
      }
    }
  }).observe({ entryTypes: ['gc'] })
  return gc
}

async function main () {
  const [role, arg] = process.argv.slice(2)
  const gc = watchGc()
  /** @type {{ port: number, adminPort?: number, stop: () => Promise<void>, stats?: () => Record<string, number>, reload?: () => Promise<boolean> }} */
  let server
  if (role === 'upstream') server = await startUpstream()
  else if (role === 'baseline') server = await startBaseline(/** @type {string} */ (arg))
  else if (role === 'jotgate') server = await startJotgate(/** @type {string} */ (arg))
  else throw new Error(`unknown role ${role}`)
  process.on('message', (/** @type {{ type: string }} */ msg) => {
    if (msg.type === 'stats') { process.send?.({ type: 'stats', stats: { ...server.stats?.(), ...gc, heapUsed: process.memoryUsage().heapUsed } }); return }
    if (msg.type === 'reload') {
      const reload = server.reload ?? (() => Promise.resolve(false))
      reload().then((ok) => process.send?.({ type: 'reloaded', ok }), () => process.send?.({ type: 'reloaded', ok: false }))
      return
    }
    if (msg.type !== 'stop') return
    server.stop().then(() => process.exit(0), (err) => { process.stderr.write(`${err?.stack ?? err}\n`); process.exit(1) })
  })
  // The orchestrator going away (crash, Ctrl-C) must not leave servers behind.
  process.on('disconnect', () => process.exit(0))
  process.send?.({ type: 'ready', port: server.port, adminPort: server.adminPort })
}

/**
 * @typedef {object} ServerHandle
 * @property {string} name
 * @property {import('node:child_process').ChildProcess} child
 * @property {number} pid
 * @property {number} port
 * @property {number | undefined} adminPort
 * @property {string} url
 * @property {() => Promise<number | null>} stop resolves with the exit code
 * @property {() => Promise<Record<string, number>>} stats the server's own counters: minorCount, minorMs, majorCount, majorMs (garbage collections), heapUsed (bytes); upstream: connections, requests
 * @property {() => Promise<boolean>} reload jotgate: reload the config as SIGHUP does (true when it took)
 */

/**
 * Forks one server and waits for it to listen.
 * @param {string} name a label for messages
 * @param {string[]} args role and its argument
 * @param {{ execArgv?: string[], env?: NodeJS.ProcessEnv, script?: string, execPath?: string, startTimeoutMs?: number }} [options]
 *   script: another checkout's bench/servers.js, to run its own build (bench/compare.js);
 *   execPath: what runs it instead of node (valgrind, with node and its flags in execArgv: bench/instructions.js);
 *   startTimeoutMs: how long it may take to listen (20 s)
 * @returns {Promise<ServerHandle>}
 */
export function spawnServer (name, args, options = {}) {
  const child = fork(options.script ?? SELF, args, {
    execArgv: options.execArgv ?? [],
    ...(options.execPath === undefined ? {} : { execPath: options.execPath }),
    env: options.env ?? process.env,
    // stdout is jotgate's request log: written, never read (see startJotgate).
    stdio: ['ignore', 'ignore', 'pipe', 'ipc']
  })
  let stderr = ''
  child.stderr?.on('data', (chunk) => { stderr = (stderr + chunk).slice(-4000) })
  const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)))
  return new Promise((resolve, reject) => {
    const startTimeoutMs = options.startTimeoutMs ?? 20_000
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${name} did not start within ${startTimeoutMs / 1000} s\n${stderr}`)) }, startTimeoutMs)
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${name} exited with ${code} before listening\n${stderr}`)) })
    child.once('message', (/** @type {{ type: string, port: number, adminPort?: number }} */ msg) => {
      clearTimeout(timer)
      if (msg.type !== 'ready') { reject(new Error(`${name}: unexpected message ${JSON.stringify(msg)}`)); return }
      resolve({
        name,
        child,
        pid: /** @type {number} */ (child.pid),
        port: msg.port,
        adminPort: msg.adminPort,
        url: `http://127.0.0.1:${msg.port}`,
        stats: () => request(child, 'stats', 'stats').then((m) => m.stats),
        reload: () => request(child, 'reload', 'reloaded').then((m) => m.ok === true),
        async stop () {
          if (child.exitCode !== null) return child.exitCode
          const timeout = setTimeout(() => child.kill('SIGKILL'), 15_000)
          child.send({ type: 'stop' })
          const code = /** @type {number | null} */ (await exited)
          clearTimeout(timeout)
          return code
        }
      })
    })
  })
}

/**
 * Sends `{ type }` to a server and resolves with its first answer of type `answer`.
 * @param {import('node:child_process').ChildProcess} child
 * @param {string} type
 * @param {string} answer
 * @returns {Promise<any>}
 */
function request (child, type, answer) {
  return new Promise((resolve) => {
    /** @param {{ type: string }} m */
    const onMessage = (m) => { if (m.type === answer) { child.off('message', onMessage); resolve(m) } }
    child.on('message', onMessage)
    child.send({ type })
  })
}

if (process.argv[1] === SELF) {
  main().catch((err) => {
    process.stderr.write(`${err?.stack ?? err}\n`)
    process.exit(1)
  })
}
