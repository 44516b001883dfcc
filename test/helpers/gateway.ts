/**
 * Starts a real gateway for a test: config built from an object (as a
 * config file would be), real store, listening on a loopback port, with
 * every log line captured for assertions.
 */
import { Writable } from 'node:stream'
import { pino } from 'pino'
import type { FastifyBaseLogger } from 'fastify'
import { buildGateway, type Gateway, type GatewayOptions } from '../../src/app.js'
import type { ReplicaStore } from '../../src/store/replica.js'
import { loadConfigObject } from '../../src/config/load.js'
import { REDACT_PATHS } from '../../src/log.js'
import { ISSUER, AUDIENCE, keyConfigs, keyDir } from './zoo.js'
import { REDIS_URL, uniquePrefix } from './redis.js'

export interface TestGateway {
  url: string
  adminUrl: string | undefined
  gateway: Gateway
  logs: string[]
  close: () => Promise<void>
}

export interface StartOptions {
  /** Merged over the default config (top-level keys replace). */
  config?: Record<string, unknown>
  /** Test name for the store key prefix. */
  name?: string
  now?: GatewayOptions['now']
  store?: GatewayOptions['store']
  admin?: boolean
}

export function baseConfig (name = 'test', overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    server: { host: '127.0.0.1', port: 0 },
    store: { type: 'redis', url: REDIS_URL, keyPrefix: uniquePrefix(name) },
    tokens: { issuer: ISSUER, audience: [AUDIENCE], keys: keyConfigs() },
    ...overrides
  }
}

export function captureLogger (logs: string[]): FastifyBaseLogger {
  const stream = new Writable({ write (chunk, _enc, cb) { logs.push(String(chunk)); cb() } })
  return pino({ level: 'debug', redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, stream) as unknown as FastifyBaseLogger
}

export async function startGateway (options: StartOptions = {}): Promise<TestGateway> {
  const raw = baseConfig(options.name, options.config)
  if (options.admin === true && raw.admin === undefined) raw.admin = { host: '127.0.0.1', port: 0 }
  const loaded = loadConfigObject(raw, keyDir)
  const logs: string[] = []
  const gateway = await buildGateway(loaded, {
    logger: captureLogger(logs) as never,
    ...(options.now === undefined ? {} : { now: options.now }),
    ...(options.store === undefined ? {} : { store: options.store })
  })
  await gateway.store.ready(3000).catch(() => {})
  const url = await gateway.app.listen({ host: '127.0.0.1', port: 0 })
  let adminUrl: string | undefined
  if (gateway.admin !== undefined) adminUrl = await gateway.admin.listen({ host: '127.0.0.1', port: 0 })
  return { url, adminUrl, gateway, logs, close: () => gateway.close() }
}

/**
 * Resolves true once the gateway's revocation replica (store.replica) is
 * trusted, false if it is not within `timeoutMs`. The metrics wrapper
 * spreads the replica store, so replicaTrusted is reachable on it.
 */
export async function replicaTrusted (gw: TestGateway, timeoutMs = 5000): Promise<boolean> {
  const store = gw.gateway.store as Partial<Pick<ReplicaStore, 'replicaTrusted'>>
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (store.replicaTrusted?.() === true) return true
    if (Date.now() >= deadline) return false
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
