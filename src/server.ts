/**
 * Running the gateway: listen, then handle signals. SIGTERM/SIGINT drain
 * and exit 0; SIGHUP reloads the config (a bad one is logged, the old one
 * keeps serving).
 */
import { createHook } from 'node:async_hooks'
import { setFlagsFromString } from 'node:v8'
import type { Logger } from 'pino'
import { buildGateway, type Gateway } from './app.js'
import { loadConfigFile, type LoadedConfig } from './config/load.js'
import { ConfigError, formatProblem } from './config/problems.js'
import { toMs } from './config/duration.js'

export interface RunningGateway {
  gateway: Gateway
  /** Ports actually bound (useful with port 0). */
  ports: { server: number, admin: number | undefined }
  shutdown: (signal: string) => Promise<void>
  reload: () => Promise<boolean>
}

export function logWarnings (log: Logger, loaded: LoadedConfig): void {
  for (const w of loaded.warnings) log.warn({ code: w.code, path: w.path }, `${w.path}: ${w.message}`)
}

/**
 * Turns V8's allocation-site pretenuring off for the gateway process,
 * unless the operator names the flag in NODE_OPTIONS or node's own flags.
 *
 * Measured (README, Performance): now and then, after a cold start under
 * load, V8 decides that the sites allocating per-request objects (stream
 * end-of-stream closures, listeners, fastify's reply state) make long-lived
 * objects and allocates them in the old generation from then on. They die
 * young all the same: every scavenge scans them (4-5 ms instead of about
 * 1), major collections follow one another, 1.9 GB of such objects went
 * through the old generation in 3 minutes, and the process stays that way,
 * with 30-70% more CPU per request. A gateway's long-lived objects are few
 * (connections, caches) and ordinary promotion handles them.
 */
export function disablePretenuring (env: NodeJS.ProcessEnv = process.env, execArgv: readonly string[] = process.execArgv): boolean {
  const named = (s: string | undefined) => s !== undefined && /allocation[-_]site[-_]pretenuring/.test(s)
  if (named(env.NODE_OPTIONS) || execArgv.some(named)) return false
  setFlagsFromString('--no-allocation-site-pretenuring')
  return true
}

/** Held for the life of the process: see keepTickObjectShape. */
let keptTickObject: object | undefined
const noop = (): void => {}

/**
 * Holds one of the objects process.nextTick queues, for the life of the
 * process, so that V8 keeps the hidden classes ("maps") they all share.
 *
 * Measured (README, Performance): a gateway left idle for about eight
 * seconds after start gets V8's memory reducer, up to three full
 * collections meant to shrink an idle heap. When no tick object is alive
 * at that moment they free the maps of nextTick's object literal
 * (`{ [async_id_symbol], [trigger_async_id_symbol], callback, args }`);
 * the maps are made anew on the next call and three of the literal's
 * property stores turn megamorphic for the rest of the process: each
 * nextTick then goes through V8's runtime, about 10 µs of CPU per
 * proxied request. With one object held the maps live on and the stores
 * stay monomorphic. async_hooks hands the object over; the hook is on for
 * that one call only. Returns false when an object is already held.
 */
export function keepTickObjectShape (): boolean {
  if (keptTickObject !== undefined) return false
  const hook = createHook({
    init (_asyncId, type, _triggerAsyncId, resource) {
      if (type === 'TickObject') keptTickObject = resource
    }
  })
  hook.enable()
  try {
    process.nextTick(noop)
  } finally {
    hook.disable()
  }
  return keptTickObject !== undefined
}

export async function runGateway (loaded: LoadedConfig, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<RunningGateway> {
  disablePretenuring(env)
  keepTickObjectShape()
  logWarnings(log, loaded)
  const gateway = await buildGateway(loaded, { logger: log })
  const { server, admin } = loaded.config
  try {
    await gateway.store.ready(2000)
  } catch (err) {
    // Not fatal: readiness reports it and requests needing the store get 503
    // until it answers; ioredis keeps reconnecting.
    log.warn({ err: (err as Error).message }, 'store not reachable at start')
  }
  let serverPort: number
  let adminPort: number | undefined
  try {
    await gateway.app.listen({ host: server.host, port: server.port })
    serverPort = portOf(gateway.app.server.address())
    if (gateway.admin !== undefined && admin !== undefined) {
      await gateway.admin.listen({ host: admin.host, port: admin.port })
      adminPort = portOf(gateway.admin.server.address())
    }
  } catch (err) {
    // EADDRINUSE and the like: without this the open store connection (and
    // a listener already bound) kept the process alive after the error.
    await gateway.close().catch(() => {})
    throw err
  }
  log.info({ port: serverPort, adminPort, host: server.host, routes: loaded.config.routes.length }, 'jotgate listening')

  let closing: Promise<void> | undefined
  const shutdown = (signal: string): Promise<void> => {
    closing ??= (async () => {
      log.info({ signal }, 'shutting down: draining in-flight requests')
      const grace = toMs(gateway.generation().config.server.shutdownGrace)
      const timer = setTimeout(() => {
        log.warn({ graceMs: grace }, 'grace period over: closing remaining connections')
        gateway.app.server.closeAllConnections()
      }, grace)
      timer.unref()
      await gateway.close()
      clearTimeout(timer)
      log.info('stopped')
      // Log lines are written asynchronously: none may be lost at exit.
      await new Promise<void>((resolve) => { log.flush(() => resolve()) })
    })()
    return closing
  }

  // Reloads run one after another: two quick SIGHUPs must not race, or a
  // slow first reload (fetching JWKS) could swap in after the second one and
  // leave the older file serving.
  let reloading: Promise<boolean> = Promise.resolve(true)
  const reload = (): Promise<boolean> => {
    reloading = reloading.then(reloadOnce, reloadOnce)
    return reloading
  }
  const reloadOnce = async (): Promise<boolean> => {
    const file = loaded.file
    try {
      const next = loadConfigFile(file, env)
      const before = gateway.generation().config
      if (JSON.stringify(before.server) !== JSON.stringify(next.config.server) || JSON.stringify(before.admin) !== JSON.stringify(next.config.admin) ||
        JSON.stringify(before.store) !== JSON.stringify(next.config.store) || JSON.stringify(before.auth) !== JSON.stringify(next.config.auth)) {
        log.warn('server, admin, store and auth settings take effect only after a restart')
      }
      await gateway.reload(next)
      logWarnings(log, next)
      log.info({ file, routes: next.config.routes.length }, 'config reloaded')
      return true
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems.map(formatProblem) : [(err as Error).message]
      log.error({ problems }, 'config reload refused; the old config keeps serving')
      return false
    }
  }
  return { gateway, ports: { server: serverPort, admin: adminPort }, shutdown, reload }
}

function portOf (address: ReturnType<import('node:net').Server['address']>): number {
  return typeof address === 'object' && address !== null ? address.port : 0
}
