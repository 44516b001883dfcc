/**
 * The Redis store, and the only file that imports ioredis. Standalone,
 * Sentinel and Cluster come from ioredis itself. Every store operation
 * touches a single key (isRevoked reads its keys with one GET each on
 * Cluster), so each works on Cluster without hash tags; the replica feed,
 * whose MULTI and MGET touch several keys, puts them all under the
 * `{rvfeed}` hash tag, in one slot.
 *
 * Fail fast: no offline queue (a command while disconnected rejects at once
 * instead of hanging the request) and a short command timeout; ioredis
 * reconnects on its own, so service resumes without a restart (across a
 * Sentinel failover too: each reconnection asks the Sentinels for the
 * current master).
 *
 * Sentinel: the primary replicates asynchronously, so a revocation it has
 * acknowledged can be lost if it dies before a replica got it, and the
 * promoted replica would accept the token again. Revocations are therefore
 * confirmed with WAIT (see createConfirmer): the call returns only once a
 * replica that a failover could promote holds the entry.
 */
import { isIP } from 'node:net'
import { Redis, Cluster, type RedisOptions } from 'ioredis'
import type { GatewayConfig } from '../config/schema.js'
import { toMs } from '../config/duration.js'
import type { FeedBatch, RevocationEvent, RevocationFeed } from './feed.js'
import { StoreUnavailableError, type RefreshRecord, type RevocationSubject, type SpendResult, type Store } from './types.js'

type Client = Redis | Cluster
interface SentinelAuth { password?: string }

/** How often a failing store is probed with PING. */
const PROBE_MS = 250

/** 9999-12-31T23:59:59Z: the latest expiry the store writes. */
const MAX_EXAT = 253_402_300_799

const SCRIPTS = {
  // A sub's cut-off only moves forward, and its TTL never shrinks: KEEPTTL,
  // since a plain SET drops the TTL and the EXPIRE below would then apply a
  // shorter one.
  jgRevokeSub: `local cur = tonumber(redis.call('GET', KEYS[1]))
if cur == nil or cur < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL') end
local ttl = redis.call('TTL', KEYS[1])
if ttl < tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1`,
  // Atomic spend: '1' + record is live, '0' + record is spent (kept to detect reuse).
  jgSpend: `local v = redis.call('GET', KEYS[1])
if not v then return false end
if string.sub(v, 1, 1) == '1' then redis.call('SET', KEYS[1], '0' .. string.sub(v, 2), 'KEEPTTL') end
return v`,
  jgHit: `local c = redis.call('INCR', KEYS[1])
local t = redis.call('PTTL', KEYS[1])
if t < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); t = tonumber(ARGV[1]) end
return {c, t}`
} as const

interface ScriptClient {
  jgRevokeSub: (key: string, at: number, ttl: number) => Promise<number>
  jgSpend: (key: string) => Promise<string | null>
  jgHit: (key: string, windowMs: number) => Promise<[number, number]>
}

export interface RedisStore extends Store {
  /**
   * The revocation feed for replicas, on the same connection settings.
   * @param retentionMs how long events stay in the stream (the longest revocation lifetime)
   */
  createFeed: (retentionMs: number) => RevocationFeed
}

export function createRedisStore (store: GatewayConfig['store']): RedisStore {
  const commandTimeout = toMs(store.commandTimeout)
  /** How jotgate's own connections to the Sentinels authenticate. */
  const sentinelAuth: SentinelAuth = store.sentinelPassword === undefined ? {} : { password: store.sentinelPassword }
  const base: RedisOptions = {
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    commandTimeout,
    connectTimeout: Math.max(1000, commandTimeout * 2),
    maxRetriesPerRequest: 0,
    // Reconnect quickly so service resumes within seconds of Redis returning.
    retryStrategy: (times) => Math.min(100 * times, 1000),
    // Named in CLIENT LIST, so that an operator (or a test) sees which
    // connections are the gateway's and what each is for.
    connectionName: 'jotgate',
    // Credentials and TLS for Sentinel- and Cluster-managed nodes (a
    // standalone URL carries its own: redis://user:pass@host, rediss://).
    ...(store.username === undefined ? {} : { username: store.username }),
    ...(store.password === undefined ? {} : { password: store.password }),
    ...(store.tls ? { tls: {} } : {})
  }
  let client: Client
  if (store.cluster !== undefined) {
    client = new Cluster(store.cluster, {
      enableOfflineQueue: false,
      // Not on Cluster: an auto-pipelined batch whose commands get MOVED
      // answers (some of them, for some slots) is not redirected: ioredis
      // hands the raw MOVED errors back. After a master restarts, the keys
      // of its slots then fail for good (seen: still failing 12 s after the
      // node was back), so the store never recovers without a restart.
      enableAutoPipelining: false,
      clusterRetryStrategy: (times) => Math.min(100 * times, 1000),
      redisOptions: { ...base, enableAutoPipelining: false }
    })
  } else if (store.sentinels !== undefined) {
    client = new Redis({
      ...base,
      sentinels: store.sentinels,
      name: store.name!,
      // A Sentinel that accepts the connection but never answers (stopped,
      // or hung) would otherwise hold every reconnection for good: after
      // this long the next Sentinel is asked.
      sentinelCommandTimeout: Math.max(1000, commandTimeout * 2),
      ...(store.sentinelPassword === undefined ? {} : { sentinelPassword: store.sentinelPassword })
    })
  } else {
    client = new Redis(store.url, base)
  }
  // Errors surface through the commands; the event only needs a listener so
  // that an unreachable Redis is not an unhandled 'error' event.
  client.on('error', () => {})
  for (const [name, lua] of Object.entries(SCRIPTS)) client.defineCommand(name, { numberOfKeys: 1, lua })
  const scripts = client as unknown as ScriptClient
  const isCluster = client instanceof Cluster
  const sentinelMode = client instanceof Redis && store.cluster === undefined && store.sentinels !== undefined
  // Every connection to the master: moved to the new one when the Sentinels switch.
  const { track, follow } = createFollower()
  track(client)
  const confirmer = sentinelMode ? createConfirmer(client as Redis, store.sentinels!, store.name!, commandTimeout, follow, sentinelAuth) : undefined
  if (confirmer !== undefined) track(confirmer.connection)
  const watcher = sentinelMode
    ? watchSwitch(store.sentinels!, store.name!, commandTimeout, (from, to) => { confirmer?.formerMaster(from); follow(to) }, sentinelAuth)
    : undefined
  /** A revocation write: on Sentinel, on the confirming connection and replicated before it resolves. */
  const revocationWrite = (op: (c: Redis | Cluster) => Promise<unknown>): Promise<unknown> =>
    confirmer === undefined ? op(client) : confirmer.write(op)
  const p = store.keyPrefix
  const key = {
    jti: (id: string) => `${p}rv:jti:${id}`,
    sid: (id: string) => `${p}rv:sid:${id}`,
    sub: (id: string) => `${p}rv:sub:${id}`,
    refresh: (hash: string) => `${p}rt:${hash}`,
    hit: (k: string) => `${p}rl:${k}`
  }

  // A hung Redis (connected but not answering) keeps the status 'ready': a
  // failed command marks the store unhealthy until a command or a PING
  // answers again, so that /readyz tells the truth even without traffic.
  let failing = false
  let probe: NodeJS.Timeout | undefined
  const recovered = () => {
    failing = false
    clearInterval(probe)
    probe = undefined
  }
  const markFailing = () => {
    failing = true
    if (probe !== undefined) return
    probe = setInterval(() => {
      if (client.status === 'ready') client.ping().then(recovered, () => {})
    }, PROBE_MS)
    probe.unref()
  }
  client.on('ready', recovered)

  async function call<T> (op: () => Promise<T>): Promise<T> {
    if (client.status !== 'ready') throw new StoreUnavailableError(`redis is ${client.status}`)
    try {
      const result = await op()
      if (failing) recovered()
      return result
    } catch (cause) {
      // Written but not yet replicated: Redis itself answered, it is not down.
      if (cause instanceof NotConfirmedError) throw cause
      markFailing()
      throw new StoreUnavailableError('redis command failed', { cause })
    }
  }

  // One MGET on a single node; on Cluster the keys live in different slots,
  // so single GETs, in parallel.
  const mget = (keys: string[]): Promise<(string | null)[]> =>
    isCluster ? Promise.all(keys.map((k) => client.get(k))) : client.mget(keys)

  return {
    kind: 'redis',
    async ready (timeoutMs = 5000) {
      await Promise.all([client, ...(confirmer === undefined ? [] : [confirmer.connection])].map((c) => whenReady(c, timeoutMs)))
    },
    isHealthy: () => client.status === 'ready' && !failing,
    isRevoked: ({ jti, sid, sub, iat }: RevocationSubject) => call(async () => {
      const keys: string[] = []
      if (jti !== undefined) keys.push(key.jti(jti))
      if (sid !== undefined) keys.push(key.sid(sid))
      if (keys.length === 0 && sub === undefined) return false
      const subIndex = sub === undefined ? -1 : keys.push(key.sub(sub)) - 1
      const values = await mget(keys)
      for (let i = 0; i < values.length; i++) {
        const v = values[i]
        if (v === null || v === undefined) continue
        if (i !== subIndex) return true
        if (iat === undefined || Math.floor(iat) <= Number(v)) return true
      }
      return false
    }),
    revokeJti: (jti, exp) => call(async () => {
      // EXAT: the entry disappears exactly when the token would have expired.
      // Capped at year 9999: Redis refuses larger values (and `1e+300` is not
      // an integer to it), which would turn a valid revocation into a failure.
      const at = Math.min(Math.max(Math.ceil(exp), Math.ceil(Date.now() / 1000) + 1), MAX_EXAT)
      await revocationWrite((c) => c.set(key.jti(jti), '1', 'EXAT', at))
    }),
    revokeSid: (sid, ttl) => call(async () => { await revocationWrite((c) => c.set(key.sid(sid), '1', 'EX', Math.max(1, Math.ceil(ttl)))) }),
    revokeSub: (sub, at, ttl) => call(async () => {
      await revocationWrite((c) => (c as unknown as ScriptClient).jgRevokeSub(key.sub(sub), at, Math.max(1, Math.ceil(ttl))))
    }),
    subRevokedAt: (sub) => call(async () => {
      const v = await client.get(key.sub(sub))
      return v === null ? undefined : Number(v)
    }),
    putRefresh: (hash, record) => call(async () => {
      await client.set(key.refresh(hash), `1${JSON.stringify(record)}`, 'EXAT', Math.ceil(record.expiresAt))
    }),
    spendRefresh: (hash) => call(async (): Promise<SpendResult> => {
      const v = await scripts.jgSpend(key.refresh(hash))
      if (v === null) return { status: 'unknown' }
      const record = JSON.parse(v.slice(1)) as RefreshRecord
      return v[0] === '1' ? { status: 'ok', record } : { status: 'reused', record }
    }),
    hit: (k, windowMs) => call(async () => {
      const [count, resetMs] = await scripts.jgHit(key.hit(k), windowMs)
      return { count, resetMs }
    }),
    createFeed: (retentionMs) => createFeed(client, p, retentionMs, revocationWrite, track),
    async close () {
      clearInterval(probe)
      await Promise.all([quit(client), confirmer?.close(), watcher?.close()])
    }
  }
}

function whenReady (client: Client, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve()
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { cleanup(); reject(new StoreUnavailableError(`redis not ready after ${timeoutMs} ms (${client.status})`)) }, timeoutMs)
    const onReady = () => { cleanup(); resolve() }
    const cleanup = () => { clearTimeout(timer); client.off('ready', onReady) }
    client.on('ready', onReady)
  })
}

/**
 * Sentinel: listens for `+switch-master` on one Sentinel at a time (the next
 * one when it goes away) and calls `onSwitch` when `name` moves. ioredis
 * finds the new master by itself only once its connection to the old one
 * breaks: right away when the old one dies, but an old master that stays up
 * (a manual SENTINEL FAILOVER, a healed partition) keeps serving as a master
 * until the Sentinels turn it into a replica, several seconds later, and
 * what is written to it then is lost. (ioredis' own `failoverDetector`
 * does this too, but leaves its Sentinel connections reconnecting after
 * quit(), which keeps the process alive.)
 */
function watchSwitch (sentinels: HostPort[], name: string, commandTimeout: number, onSwitch: (from: HostPort, to: HostPort) => void, sentinelAuth: SentinelAuth = {}): { close: () => Promise<void> } {
  let stopped = false
  let next = 0
  let sub: Redis | undefined
  let timer: NodeJS.Timeout | undefined
  const connect = () => {
    if (stopped) return
    const s = sentinels[next++ % sentinels.length]!
    const conn = new Redis({ host: s.host, port: s.port, ...sentinelAuth, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: Math.max(1000, commandTimeout * 2), enableOfflineQueue: true })
    sub = conn
    conn.on('error', () => {})
    conn.on('message', (channel: string, message: string) => {
      // <name> <old ip> <old port> <new ip> <new port>
      const [master, fromHost, fromPort, toHost, toPort] = message.split(' ')
      if (channel !== '+switch-master' || master !== name || toHost === undefined) return
      onSwitch({ host: fromHost!, port: Number(fromPort) }, { host: toHost, port: Number(toPort) })
    })
    // A Sentinel that accepts but never confirms the subscription (hung)
    // would leave the watcher deaf for good: the next one is tried.
    const unconfirmed = setTimeout(() => conn.disconnect(), Math.max(1000, commandTimeout * 2))
    unconfirmed.unref()
    conn.subscribe('+switch-master').then(() => clearTimeout(unconfirmed), () => {})
    // No retries on this connection: when it ends, the next Sentinel.
    conn.once('end', () => {
      clearTimeout(unconfirmed)
      if (stopped) return
      timer = setTimeout(connect, 500)
      timer.unref()
    })
  }
  connect()
  return {
    async close () {
      stopped = true
      clearTimeout(timer)
      sub?.disconnect()
    }
  }
}

export interface HostPort { host: string, port: number }

/** The address a connection is on now (undefined while it has none). */
function endpointOf (connection: Redis): HostPort | undefined {
  const stream = (connection as unknown as { stream?: { remoteAddress?: string, remotePort?: number } }).stream
  if (stream?.remoteAddress === undefined || stream.remotePort === undefined) return undefined
  return { host: stream.remoteAddress.replace(/^::ffff:/, ''), port: stream.remotePort }
}

/**
 * Sentinel: the connections that must be on the master. `follow(master)`
 * reconnects, through the Sentinels, every tracked connection that is not
 * on it.
 *
 * A connection that is asking the Sentinels where the master is (status
 * 'connecting') is left alone: ioredis ends it for good when it is
 * disconnected then (its connector drops the pending answer with
 * "Connection is closed." and the client goes to 'end'; seen once under a
 * loaded test run: every request 503 until a restart). What it is told may
 * predate the switch, so it is looked at again once it is ready.
 * 'reconnecting', 'wait' and 'end' are left alone too: such a connection
 * asks the Sentinels anew when (if) it connects.
 */
export function createFollower (): { track: (c: Client) => void, follow: (master: HostPort) => void } {
  const connections = new Set<Redis>()
  const deferred = new Map<Redis, HostPort>()
  const moveUnlessOn = (connection: Redis, master: HostPort) => {
    const at = endpointOf(connection)
    if (at === undefined || !sameAddress(at, master)) connection.disconnect(true)
  }
  return {
    track (c) {
      const conn = c as Redis
      if (connections.has(conn)) return
      connections.add(conn)
      conn.on('ready', () => {
        const master = deferred.get(conn)
        if (master === undefined) return
        deferred.delete(conn)
        moveUnlessOn(conn, master)
      })
    },
    follow (master) {
      for (const conn of connections) {
        if (conn.status === 'connecting') deferred.set(conn, master)
        else if (conn.status === 'connect' || conn.status === 'ready') moveUnlessOn(conn, master)
      }
    }
  }
}

/** `at` (an IP) is `addr` as a Sentinel names it; a Sentinel may name it by hostname: then the port alone is compared. */
function sameAddress (at: HostPort, addr: HostPort): boolean {
  return at.port === addr.port && (isIP(addr.host) === 0 || at.host === addr.host.replace(/^::ffff:/, ''))
}

/** A revocation the primary wrote but no promotable replica confirmed in time (503: the caller retries). */
class NotConfirmedError extends StoreUnavailableError {}

/**
 * Revocation writes on Sentinel. Each runs on a connection of its own,
 * followed by `WAIT 1`: WAIT covers the writes of its connection and blocks
 * that connection until a replica acknowledged them (or the timeout), so it
 * must not be the shared, auto-pipelined one that token checks use.
 *
 * Alongside, the Sentinels are asked (one kept connection, the next
 * Sentinel when it fails) where the master is and which replicas could be
 * promoted:
 * - a write that went to another address than the master they name went to
 *   a former master (a failover the connection has not followed yet): it
 *   will be dropped when that node becomes a replica, so 503, and every
 *   connection moves to the new master;
 * - a replica counts unless they see it down (s_down, o_down) or it is a
 *   former master (named in +switch-master, or by an earlier look) that is
 *   out of reach or not turned into a replica yet (~10 s after a manual
 *   failover): it gets a full copy of the master when it becomes a replica.
 *   A replica that says it is a master but never was one is the one a
 *   failover in progress is promoting: it counts, and no longer
 *   acknowledges, so nothing is written unconfirmed to a master being
 *   replaced. When none
 *   counts (a lone primary, or the one left after a failover until its old
 *   partner rejoins) the write stands on the primary alone: there is nothing
 *   a failover could lose it to, short of a second failure before a replica
 *   rejoins;
 * - otherwise a revocation that no replica confirmed within the command
 *   timeout is refused with a 503 (it may be in place, but the caller
 *   cannot count on it surviving a failover).
 *
 * Limits: a replica that the Sentinels count but that lags, lost its link
 * or is still in its initial sync (Redis waits repl-diskless-sync-delay,
 * 5 s by default, before sending it) makes revocations fail until it caught
 * up; with several replicas one ack is asked for, and Sentinel promotes the
 * most up to date replica (among equal priorities), which then holds it.
 */
function createConfirmer (client: Redis, sentinels: HostPort[], name: string, commandTimeout: number, onStale: (master: HostPort) => void, sentinelAuth: SentinelAuth = {}) {
  const connection = client.duplicate({ connectionName: 'jotgate-confirm' })
  connection.on('error', () => {})
  for (const [cmd, lua] of Object.entries(SCRIPTS)) connection.defineCommand(cmd, { numberOfKeys: 1, lua })
  // Below the command timeout, so that WAIT answers (0) before the client gives up.
  const waitMs = Math.max(1, Math.floor(commandTimeout * 0.8))
  /** Promotable replicas at the last look; WAIT is skipped while there were none. */
  let lastCount = 1
  /** The master the Sentinels named last, and those they named before it. */
  let lastMaster: string | undefined
  const formerMasters = new Set<string>()

  let next = 0
  let sentinel: Redis | undefined
  const sentinelClient = (): Redis => {
    if (sentinel === undefined || sentinel.status === 'end') {
      const s = sentinels[next % sentinels.length]!
      sentinel = new Redis({ host: s.host, port: s.port, ...sentinelAuth, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: Math.max(1000, commandTimeout * 2), commandTimeout, enableOfflineQueue: true })
      sentinel.on('error', () => {})
    }
    return sentinel
  }

  /** Where the Sentinels say the master is, and how many replicas they could promote. */
  async function sentinelView (): Promise<{ host: string, port: number, count: number }> {
    for (let attempt = 0; attempt < sentinels.length; attempt++) {
      const conn = sentinelClient()
      try {
        const [addr, replicas] = await Promise.all([
          conn.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name) as Promise<[string, string] | null>,
          conn.call('SENTINEL', 'REPLICAS', name) as Promise<string[][]>
        ])
        if (addr === null) throw new Error(`the Sentinel does not know ${name}`)
        const master = `${addr[0]}:${addr[1]}`
        if (lastMaster !== undefined && lastMaster !== master) formerMasters.add(lastMaster)
        lastMaster = master
        const field = (fields: string[], key: string) => { const i = fields.indexOf(key); return i < 0 ? undefined : fields[i + 1] }
        const count = replicas.filter((fields) => {
          const flags = (field(fields, 'flags') ?? '').split(',')
          // Seen down by the Sentinels: they will not promote it.
          if (flags.includes('s_down') || flags.includes('o_down')) return false
          // The replica a failover is promoting right now (the leader flags
          // it, others only see it say it is a master; the leader's link to
          // it may even be down): it no longer acknowledges this master, and
          // nothing may be written unconfirmed to a master being replaced.
          if (flags.includes('promoted')) return true
          // A former master that is out of reach or not turned into a replica
          // yet (after a manual failover it stays a master ~10 s): it gets a
          // full copy of the master when it becomes a replica.
          const former = formerMasters.has(`${field(fields, 'ip') ?? ''}:${field(fields, 'port') ?? ''}`)
          if (former && (flags.includes('disconnected') || field(fields, 'role-reported') === 'master')) return false
          return true
        }).length
        lastCount = count
        return { host: addr[0], port: Number(addr[1]), count }
      } catch {
        conn.disconnect()
        sentinel = undefined
        next++
      }
    }
    throw new NotConfirmedError('no Sentinel answered: cannot tell whether the revocation would survive a failover')
  }

  // A first look (and one after each reconnection), so that the master of
  // the moment is known as a former master after a failover.
  connection.on('ready', () => { sentinelView().catch(() => {}) })

  return {
    connection,
    /** Told by the switch watcher: `addr` was the master. */
    formerMaster (addr: HostPort) { formerMasters.add(`${addr.host}:${addr.port}`) },
    async write (op: (c: Redis) => Promise<unknown>): Promise<unknown> {
      const at = endpointOf(connection)
      if (connection.status !== 'ready' || at === undefined) throw new StoreUnavailableError(`redis is ${connection.status}`)
      const result = await op(connection)
      const [view, acked] = await Promise.all([
        sentinelView(),
        lastCount > 0 ? connection.call('WAIT', 1, waitMs).then(Number) : Promise.resolve(0)
      ])
      const now = endpointOf(connection)
      if (now === undefined || now.host !== at.host || now.port !== at.port || !sameAddress(at, view)) {
        onStale(view)
        throw new NotConfirmedError(`revocation written to ${at.host}:${at.port}, not the master the Sentinels name (${view.host}:${view.port})`)
      }
      if (acked >= 1 || view.count === 0) return result
      throw new NotConfirmedError(`revocation not confirmed by a replica within ${waitMs} ms: a failover could lose it`)
    },
    async close () {
      sentinel?.disconnect()
      await quit(connection)
    }
  }
}

async function quit (client: Client): Promise<void> {
  try {
    await client.quit()
  } catch {
    client.disconnect()
  }
}

/**
 * The feed: a stream of revocation events, a sorted set naming instances and
 * one ack key per instance whose TTL is its liveness. All keys share one hash
 * tag so that they live in one Cluster slot.
 */
/** Resolves once `c` is ready; rejects as unavailable after `ms`. */
function readyWithin (c: Client, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onReady = () => { clearTimeout(timer); resolve() }
    const timer = setTimeout(() => {
      c.off('ready', onReady)
      reject(new StoreUnavailableError('revocation feed connection not ready'))
    }, ms)
    c.once('ready', onReady)
  })
}

function createFeed (client: Client, prefix: string, retentionMs: number, write: (op: (c: Client) => Promise<unknown>) => Promise<unknown>, track: (c: Client) => void): RevocationFeed {
  const stream = `${prefix}{rvfeed}:stream`
  const instances = `${prefix}{rvfeed}:instances`
  const ack = (id: string) => `${prefix}{rvfeed}:ack:${id}`
  // Blocking reads hold a connection: they get their own.
  let blocking: Client | undefined
  const blocker = (): Client => {
    if (blocking === undefined) {
      blocking = client.duplicate()
      blocking.on('error', () => {})
      track(blocking)
    }
    return blocking
  }
  const toEvent = (fields: string[]): RevocationEvent | undefined => {
    const f: Record<string, string> = {}
    for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!
    if (f.k !== 'jti' && f.k !== 'sid' && f.k !== 'sub') return undefined
    return { kind: f.k, id: f.i ?? '', expiresAt: Number(f.e), ...(f.a === undefined ? {} : { at: Number(f.a) }) }
  }
  const batch = (entries: [string, string[]][], cursor: string): FeedBatch => {
    const events: RevocationEvent[] = []
    for (const [, fields] of entries) { const e = toEvent(fields); if (e !== undefined) events.push(e) }
    return { events, cursor: entries.length > 0 ? entries[entries.length - 1]![0] : cursor }
  }
  return {
    async snapshot () {
      let start = String(Date.now() - retentionMs)
      let cursor = '0-0'
      const events: RevocationEvent[] = []
      for (;;) {
        const entries = await client.xrange(stream, start, '+', 'COUNT', 5000) as [string, string[]][]
        const b = batch(entries, cursor)
        events.push(...b.events)
        cursor = b.cursor
        if (entries.length < 5000) return { events, cursor }
        start = `(${cursor}`
      }
    },
    async read (cursor, blockMs) {
      const c = blocker()
      // A fresh (or reconnecting) connection refuses commands until it is
      // ready (no offline queue): wait for it rather than fail the read.
      if (c.status !== 'ready') await readyWithin(c, blockMs)
      const res = await c.xread('COUNT', 1000, 'BLOCK', blockMs, 'STREAMS', stream, cursor) as [string, [string, string[]][]][] | null
      return res === null ? { events: [], cursor } : batch(res[0]![1], cursor)
    },
    async publish (event) {
      const fields = ['k', event.kind, 'i', event.id, 'e', String(event.expiresAt), ...(event.at === undefined ? [] : ['a', String(event.at)])]
      // Confirmed by a replica on Sentinel, like the revocation itself: an
      // instance started after a failover loads its replica from this stream.
      const id = await write((c) => c.xadd(stream, 'MINID', '~', String(Date.now() - retentionMs), '*', ...fields)) as string | null
      if (id === null) throw new StoreUnavailableError('XADD returned no id')
      return id
    },
    async heartbeat (instance, cursor, ttlMs) {
      await client.multi()
        .set(ack(instance), cursor, 'PX', ttlMs)
        .zadd(instances, Date.now() + ttlMs, instance)
        .zremrangebyscore(instances, '-inf', Date.now() - 60_000)
        .exec()
    },
    async liveAcks () {
      // The ack key's TTL (kept by Redis) decides who is live; the sorted
      // set only lists who might be.
      const ids = await client.zrangebyscore(instances, Date.now() - 10_000, '+inf')
      const out = new Map<string, string | undefined>()
      if (ids.length === 0) return out
      const acks = await client.mget(ids.map(ack))
      ids.forEach((id, i) => { const a = acks[i]; if (a !== null && a !== undefined) out.set(id, a) })
      return out
    },
    async close () {
      if (blocking !== undefined) await quit(blocking)
    }
  }
}
