/**
 * Real Redis for tests. The shared server comes from REDIS_URL (default
 * redis://127.0.0.1:6379); every test file uses its own key prefix, since
 * tap runs files in parallel. Tests that stop Redis start their own
 * redis-server on a free loopback port and stop it by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { Redis } from 'ioredis'

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

/** A key prefix unique to this run and `name`. */
export function uniquePrefix (name: string): string {
  return `jgtest:${name}:${randomBytes(4).toString('hex')}:`
}

/** A plain client for assertions (keys counted, TTLs read). */
export function redisClient (url = REDIS_URL): Redis {
  return new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1 })
}

export async function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => resolve(port))
    })
  })
}

export interface RedisProcess {
  port: number
  url: string
  proc: ChildProcess
  /** Stops the server by PID (SIGKILL: as abrupt as a crash) and waits for exit. */
  stop: () => Promise<void>
  /** Starts it again on the same port. */
  restart: () => Promise<void>
}

/** Starts a private redis-server on a free loopback port, without persistence. */
export async function startRedisServer (extraArgs: string[] = []): Promise<RedisProcess> {
  const port = await freePort()
  const handle: RedisProcess = {
    port,
    url: `redis://127.0.0.1:${port}`,
    proc: undefined as unknown as ChildProcess,
    stop: async () => {
      const proc = handle.proc
      if (proc.exitCode !== null || proc.signalCode !== null) return
      const exited = new Promise((resolve) => proc.once('exit', resolve))
      process.kill(proc.pid!, 'SIGKILL')
      await exited
    },
    restart: async () => { await launch() }
  }
  const launch = async () => {
    handle.proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs], { stdio: 'ignore' })
    await waitForPing(handle.url)
  }
  await launch()
  return handle
}

async function waitForPing (url: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    client.on('error', () => {})
    try {
      await client.connect()
      await client.ping()
      client.disconnect()
      return
    } catch {
      client.disconnect()
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  throw new Error(`redis-server at ${url} did not answer within ${timeoutMs} ms`)
}

/**
 * Key prefixes a test file writes under; every key under them is deleted
 * when the file's tests are done.
 */
export function trackPrefixes (t: { teardown: (fn: () => Promise<void>) => void }): string[] {
  const prefixes: string[] = []
  t.teardown(async () => {
    const client = redisClient()
    for (const prefix of prefixes) {
      const keys = await client.keys(`${prefix}*`)
      if (keys.length > 0) await client.del(...keys)
    }
    client.disconnect()
  })
  return prefixes
}
