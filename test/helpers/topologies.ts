/**
 * Real Redis topologies for tests, made of redis-server processes on free
 * loopback ports: a Cluster of N masters, and a primary + replica watched by
 * three Sentinels. Every process is stopped by its PID (SIGKILL) and every
 * temp dir removed by stop(); a process exit handler kills whatever a
 * crashed test left behind.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { freePort } from './redis.js'

const run = promisify(execFile)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export interface HostPort { host: string, port: number }

/** Every process started here and not yet stopped: killed at exit, whatever happens. */
const live = new Set<ChildProcess>()
const killAll = () => { for (const p of live) { try { process.kill(p.pid!, 'SIGKILL') } catch {} } }
process.once('exit', killAll)
// A test process stopped by a signal (tap's timeout) runs no 'exit' handler:
// kill the servers, then let the signal do what it would have done.
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGALRM'] as const) {
  process.once(signal, () => {
    killAll()
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
  })
}

/**
 * Ports handed out in this process: freePort() releases the port it found,
 * so two topologies started at once could otherwise get the same one.
 */
const taken = new Set<number>()
async function port (): Promise<number> {
  for (;;) {
    const p = await freePort()
    if (!taken.has(p) && !taken.has(p + 10000) && !taken.has(p - 10000)) { taken.add(p); return p }
  }
}

/** The password a server on this port asks for (requirepass), for the helper's own connections. */
const passwords = new Map<number, string>()

/** Passwords of a protected topology: the data nodes' and, for Sentinel, the Sentinels' own. */
export interface TopologyAuth {
  password?: string
  sentinelPassword?: string
}

function launch (args: string[]): ChildProcess {
  const proc = spawn('redis-server', args, { stdio: 'ignore' })
  live.add(proc)
  proc.once('exit', () => live.delete(proc))
  return proc
}

/** redis-server arguments for a data node that asks for `password` (and gives it to its master). */
function requirePass (password: string | undefined): string[] {
  return password === undefined ? [] : ['--requirepass', password, '--masterauth', password]
}

async function kill (proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) { live.delete(proc); return }
  const exited = new Promise((resolve) => proc.once('exit', resolve))
  try { process.kill(proc.pid!, 'SIGKILL') } catch {}
  await exited
}

/**
 * Resolves once the redis-server `proc` answers on `port` (itself, not
 * another process that holds the port: its INFO names its PID).
 */
async function answering (proc: ChildProcess, port: number, timeoutMs = 5000): Promise<void> {
  await until(`redis-server ${proc.pid} on port ${port}`, async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`redis-server on port ${port} exited (${proc.exitCode ?? proc.signalCode}); port taken?`)
    const text = await ask(port, 'INFO', 'server')
    return typeof text === 'string' && text.includes(`process_id:${proc.pid}\r\n`)
  }, timeoutMs)
}

/** One command on a short-lived connection; undefined while the server does not answer. */
export async function ask (port: number, ...args: (string | number)[]): Promise<unknown> {
  const password = passwords.get(port)
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000, commandTimeout: 2000, ...(password === undefined ? {} : { password }) })
  client.on('error', () => {})
  try {
    await client.connect()
    return await client.call(String(args[0]), ...args.slice(1))
  } catch {
    return undefined
  } finally {
    client.disconnect()
  }
}

async function until (what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await sleep(50)
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`)
}

/** `INFO <section>` as a map of its fields. */
export async function info (port: number, section: string): Promise<Map<string, string>> {
  const text = await ask(port, 'INFO', section)
  const out = new Map<string, string>()
  if (typeof text !== 'string') return out
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':')
    if (i > 0) out.set(line.slice(0, i), line.slice(i + 1))
  }
  return out
}

export interface ClusterTopology {
  nodes: HostPort[]
  /** The PIDs of the node processes now, in the order of `nodes`. */
  pids: number[]
  /** SIGKILL to node i, by PID; resolves once it exited. */
  killNode: (i: number) => Promise<void>
  /** Starts node i again on its port with its nodes.conf (it rejoins with its slots); resolves once cluster_state:ok everywhere. */
  restartNode: (i: number) => Promise<void>
  stop: () => Promise<void>
}

/** N masters (no replicas), all slots assigned, cluster_state:ok on every node. */
export async function startCluster (masters = 3, auth: TopologyAuth = {}): Promise<ClusterTopology> {
  const dir = mkdtempSync(join(tmpdir(), 'jotgate-cluster-'))
  const procs: ChildProcess[] = []
  const stop = async () => {
    await Promise.all(procs.map(kill))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    // The cluster bus listens on port + 10000: it must be a valid port too.
    const ports: number[] = []
    while (ports.length < masters) {
      const p = await port()
      if (p + 10000 <= 65535) ports.push(p)
    }
    const node = (port: number) => launch([
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
      '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '2000',
      // Persistence, as a production Cluster without replicas needs: a
      // master that restarts must come back with the revocations it held.
      '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--appenddirname', `aof-${port}`,
      ...requirePass(auth.password)
    ])
    if (auth.password !== undefined) for (const p of ports) passwords.set(p, auth.password)
    for (const port of ports) procs.push(node(port))
    for (let i = 0; i < ports.length; i++) await answering(procs[i]!, ports[i]!)
    await run('redis-cli', [...(auth.password === undefined ? [] : ['--no-auth-warning', '-a', auth.password]), '--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 20_000 })
    const clusterOk = () => until('cluster_state:ok on every node', async () => {
      for (const port of ports) {
        const text = await ask(port, 'CLUSTER', 'INFO')
        if (typeof text !== 'string' || !text.includes('cluster_state:ok') || !text.includes(`cluster_known_nodes:${masters}`)) return false
      }
      return true
    }, 20_000)
    await clusterOk()
    const topology: ClusterTopology = {
      nodes: ports.map((port) => ({ host: '127.0.0.1', port })),
      pids: procs.map((p) => p.pid!),
      killNode: (i) => kill(procs[i]!),
      async restartNode (i) {
        await kill(procs[i]!)
        procs[i] = node(ports[i]!)
        topology.pids[i] = procs[i]!.pid!
        await answering(procs[i]!, ports[i]!)
        await clusterOk()
      },
      stop
    }
    return topology
  } catch (err) {
    await stop()
    throw err
  }
}

export interface SentinelTopology {
  sentinels: HostPort[]
  name: 'mymaster'
  /**
   * The primary and the replica, as last seen (they start as such; a
   * failover swaps them: waitInSync and killPrimary ask the Sentinels first,
   * killPrimary all of them and the node itself).
   */
  readonly primaryPort: number
  readonly replicaPort: number
  readonly primaryPid: number
  /** SIGKILL, by PID, to the server the Sentinels name as the master; resolves once it exited. */
  killPrimary: () => Promise<{ port: number, pid: number }>
  /** The master address the first answering Sentinel gives. */
  masterAddr: () => Promise<HostPort | undefined>
  /** Resolves when master_repl_offset is the same on the primary and the replica (and the link is up). */
  waitInSync: (timeoutMs?: number) => Promise<void>
  stop: () => Promise<void>
}

/**
 * A primary, one replica and three Sentinels (quorum 2, down after 1 s,
 * failover timeout 3 s). Resolves once the replica is in sync and every
 * Sentinel sees the master, the replica and the two other Sentinels (so
 * that a failover can be authorized at once).
 */
export async function startSentinel (auth: TopologyAuth = {}): Promise<SentinelTopology> {
  const dir = mkdtempSync(join(tmpdir(), 'jotgate-sentinel-'))
  const procs: ChildProcess[] = []
  const stop = async () => {
    await Promise.all(procs.map(kill))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    const primaryPort = await port()
    const replicaPort = await port()
    const sentinelPorts = [await port(), await port(), await port()]
    const common = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...requirePass(auth.password)]
    if (auth.password !== undefined) for (const p of [primaryPort, replicaPort]) passwords.set(p, auth.password)
    if (auth.sentinelPassword !== undefined) for (const p of sentinelPorts) passwords.set(p, auth.sentinelPassword)
    const primary = launch(['--port', String(primaryPort), ...common])
    procs.push(primary)
    await answering(primary, primaryPort)
    const replica = launch(['--port', String(replicaPort), ...common, '--replicaof', '127.0.0.1', String(primaryPort)])
    procs.push(replica)
    await answering(replica, replicaPort)
    for (const sp of sentinelPorts) {
      // Each Sentinel rewrites its own config file: one file each.
      const conf = join(dir, `sentinel-${sp}.conf`)
      writeFileSync(conf, [
        `port ${sp}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor mymaster 127.0.0.1 ${primaryPort} 2`,
        'sentinel down-after-milliseconds mymaster 3000', // 3 s: under a busy test run, 1 s made the Sentinels fail over on their own
        'sentinel failover-timeout mymaster 3000',
        'sentinel parallel-syncs mymaster 1',
        // The data nodes' password, and the Sentinels' own (asked of clients
        // and of the other Sentinels alike).
        ...(auth.password === undefined ? [] : [`sentinel auth-pass mymaster ${auth.password}`]),
        ...(auth.sentinelPassword === undefined ? [] : [`requirepass ${auth.sentinelPassword}`, `sentinel sentinel-pass ${auth.sentinelPassword}`]),
        ''
      ].join('\n'))
      const sentinel = launch([conf, '--sentinel'])
      procs.push(sentinel)
      await answering(sentinel, sp)
    }
    // On a loaded machine the Sentinels (down after 1 s) may fail over on
    // their own: roles are asked from them rather than assumed.
    const servers = [{ port: primaryPort, proc: primary }, { port: replicaPort, proc: replica }]
    let primaryIndex = 0
    const masterAddr = async (): Promise<HostPort | undefined> => {
      for (const sp of sentinelPorts) {
        const addr = await ask(sp, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'mymaster')
        if (Array.isArray(addr) && addr.length === 2) return { host: String(addr[0]), port: Number(addr[1]) }
      }
      return undefined
    }
    const refreshRoles = async () => {
      const addr = await masterAddr()
      const i = servers.findIndex((sv) => sv.port === addr?.port)
      if (i >= 0) primaryIndex = i
    }
    const topology: SentinelTopology = {
      sentinels: sentinelPorts.map((p) => ({ host: '127.0.0.1', port: p })),
      name: 'mymaster',
      get primaryPort () { return servers[primaryIndex]!.port },
      get replicaPort () { return servers[1 - primaryIndex]!.port },
      get primaryPid () { return servers[primaryIndex]!.proc.pid! },
      async killPrimary () {
        // The node that is the master by its own INFO and by every
        // Sentinel's answer: a single Sentinel may still name the old
        // master for a moment after a failover of their own, and killing
        // that one (by then a replica) would test something else.
        await until('every Sentinel names the node that reports itself master', async () => {
          const answers = await Promise.all(sentinelPorts.map((sp) => ask(sp, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'mymaster')))
          const ports = new Set(answers.map((a) => (Array.isArray(a) && a.length === 2 ? Number(a[1]) : NaN)))
          const i = servers.findIndex((sv) => ports.size === 1 && ports.has(sv.port))
          if (i < 0 || (await info(servers[i]!.port, 'replication')).get('role') !== 'master') return false
          primaryIndex = i
          return true
        }, 10_000)
        const { port, proc } = servers[primaryIndex]!
        await kill(proc)
        return { port, pid: proc.pid! }
      },
      masterAddr,
      async waitInSync (timeoutMs = 10_000) {
        await until('replica in sync with the primary', async () => {
          await refreshRoles()
          const [p, r] = await Promise.all([info(topology.primaryPort, 'replication'), info(topology.replicaPort, 'replication')])
          const offset = p.get('master_repl_offset')
          return p.get('role') === 'master' && r.get('master_link_status') === 'up' && r.get('master_port') === String(topology.primaryPort) &&
            offset !== undefined && offset === r.get('master_repl_offset') && (p.get('slave0') ?? '').includes(`offset=${offset}`)
        }, timeoutMs)
      },
      stop
    }
    await topology.waitInSync(10_000)
    await until('every Sentinel sees the master, the replica and the other Sentinels', async () => {
      for (const sp of sentinelPorts) {
        const fields = await ask(sp, 'SENTINEL', 'MASTER', 'mymaster')
        if (!Array.isArray(fields)) return false
        const m = new Map<string, string>()
        for (let i = 0; i + 1 < fields.length; i += 2) m.set(String(fields[i]), String(fields[i + 1]))
        if (m.get('port') !== String(topology.primaryPort) || m.get('num-slaves') !== '1' || m.get('num-other-sentinels') !== '2') return false
        if (!(m.get('flags') ?? '').split(',').includes('master') || (m.get('flags') ?? '').includes('down')) return false
      }
      return true
    }, 20_000)
    return topology
  } catch (err) {
    await stop()
    throw err
  }
}
