/**
 * The Redis store, and the only file that imports ioredis. Standalone,
 * Sentinel and Cluster come from ioredis itself. Every operation touches a
 * single key, so each works on Cluster without hash tags.
 *
 * Fail fast: no offline queue (a command while disconnected rejects at once
 * instead of hanging the request) and a short command timeout; ioredis
 * reconnects on its own, so service resumes without a restart.
 */
import { Redis, Cluster, type RedisOptions } from 'ioredis'
import type { GatewayConfig } from '../config/schema.js'
import { toMs } from '../config/duration.js'
import type { FeedBatch, RevocationEvent, RevocationFeed } from './feed.js'
import { StoreUnavailableError, type RefreshRecord, type RevocationSubject, type SpendResult, type Store } from './types.js'

type Client = Redis | Cluster

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
  const base: RedisOptions = {
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    commandTimeout,
    connectTimeout: Math.max(1000, commandTimeout * 2),
    maxRetriesPerRequest: 0,
    // Reconnect quickly so service resumes within seconds of Redis returning.
    retryStrategy: (times) => Math.min(100 * times, 1000)
  }
  let client: Client
  if (store.cluster !== undefined) {
    client = new Cluster(store.cluster, {
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      clusterRetryStrategy: (times) => Math.min(100 * times, 1000),
      redisOptions: base
    })
  } else if (store.sentinels !== undefined) {
    client = new Redis({ ...base, sentinels: store.sentinels, name: store.name! })
  } else {
    client = new Redis(store.url, base)
  }
  // Errors surface through the commands; the event only needs a listener so
  // that an unreachable Redis is not an unhandled 'error' event.
  client.on('error', () => {})
  for (const [name, lua] of Object.entries(SCRIPTS)) client.defineCommand(name, { numberOfKeys: 1, lua })
  const scripts = client as unknown as ScriptClient
  const isCluster = client instanceof Cluster
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
      markFailing()
      throw new StoreUnavailableError('redis command failed', { cause })
    }
  }

  // One MGET on a single node; on Cluster the keys live in different slots,
  // so single GETs, which auto-pipelining sends in one write per node.
  const mget = (keys: string[]): Promise<(string | null)[]> =>
    isCluster ? Promise.all(keys.map((k) => client.get(k))) : client.mget(keys)

  return {
    kind: 'redis',
    async ready (timeoutMs = 5000) {
      if (client.status === 'ready') return
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => { cleanup(); reject(new StoreUnavailableError(`redis not ready after ${timeoutMs} ms (${client.status})`)) }, timeoutMs)
        const onReady = () => { cleanup(); resolve() }
        const cleanup = () => { clearTimeout(timer); client.off('ready', onReady) }
        client.on('ready', onReady)
      })
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
      await client.set(key.jti(jti), '1', 'EXAT', at)
    }),
    revokeSid: (sid, ttl) => call(async () => { await client.set(key.sid(sid), '1', 'EX', Math.max(1, Math.ceil(ttl))) }),
    revokeSub: (sub, at, ttl) => call(async () => { await scripts.jgRevokeSub(key.sub(sub), at, Math.max(1, Math.ceil(ttl))) }),
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
    createFeed: (retentionMs) => createFeed(client, p, retentionMs, commandTimeout),
    async close () {
      clearInterval(probe)
      await quit(client)
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
function createFeed (client: Client, prefix: string, retentionMs: number, commandTimeout: number): RevocationFeed {
  const stream = `${prefix}{rvfeed}:stream`
  const instances = `${prefix}{rvfeed}:instances`
  const ack = (id: string) => `${prefix}{rvfeed}:ack:${id}`
  // Blocking reads hold a connection: they get their own.
  let blocking: Client | undefined
  const blocker = (): Client => {
    if (blocking === undefined) {
      blocking = client.duplicate()
      blocking.on('error', () => {})
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
      const res = await blocker().xread('COUNT', 1000, 'BLOCK', blockMs, 'STREAMS', stream, cursor) as [string, [string, string[]][]][] | null
      return res === null ? { events: [], cursor } : batch(res[0]![1], cursor)
    },
    async publish (event) {
      const fields = ['k', event.kind, 'i', event.id, 'e', String(event.expiresAt), ...(event.at === undefined ? [] : ['a', String(event.at)])]
      const id = await client.xadd(stream, 'MINID', '~', String(Date.now() - retentionMs), '*', ...fields)
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
