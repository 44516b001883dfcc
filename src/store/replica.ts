/**
 * The revocation replica (`store.replica: true`): every instance keeps the
 * live revocation list in memory, so checking a token costs no network
 * round trip, while the contract's promise still holds: a revocation call
 * returns only after every live instance has applied it, or has stopped
 * being live.
 *
 * Why that holds: an instance trusts its replica only while both its feed
 * reads and its heartbeat writes succeeded within TRUST_MS; otherwise it
 * asks the store directly (and `onError` decides when that fails). Its
 * heartbeat lives HEARTBEAT_TTL_MS = 2 x TRUST_MS, so by the time a revoker
 * stops waiting for a silent instance (its heartbeat expired), that
 * instance has already stopped trusting its replica.
 */
import { randomBytes } from 'node:crypto'
import type { Logger } from 'pino'
import type { Store, RevocationSubject } from './types.js'
import { StoreUnavailableError } from './types.js'
import { compareCursor, type RevocationEvent, type RevocationFeed } from './feed.js'

export const TRUST_MS = 1000
export const HEARTBEAT_TTL_MS = 2 * TRUST_MS
const BLOCK_MS = 250
const ACK_POLL_MS = 2

export interface ReplicaStore extends Store {
  /** True while isRevoked is answered from memory. */
  replicaTrusted: () => boolean
  /** Entries held in memory. */
  replicaSize: () => number
}

export interface ReplicaOptions {
  /**
   * false: only publish and wait for acks (the `jotgate revoke` CLI), never
   * follow the feed nor count as a live instance.
   */
  follow?: boolean
  now?: () => number
}

export function createReplicaStore (inner: Store, feed: RevocationFeed, log: Logger, options: ReplicaOptions = {}): ReplicaStore {
  const now = options.now ?? Date.now
  const follow = options.follow ?? true
  const instance = randomBytes(8).toString('hex')
  const maps = { jti: new Map<string, number>(), sid: new Map<string, number>(), sub: new Map<string, { at: number, expiresAt: number }>() }
  let cursor: string | undefined
  let lastRead = -Infinity
  let lastBeat = -Infinity
  let stopped = false
  let loop: Promise<void> | undefined

  const apply = (events: RevocationEvent[]) => {
    for (const e of events) {
      if (e.kind === 'sub') {
        const prior = maps.sub.get(e.id)
        maps.sub.set(e.id, { at: Math.max(e.at ?? 0, prior?.at ?? 0), expiresAt: Math.max(e.expiresAt, prior?.expiresAt ?? 0) })
      } else {
        maps[e.kind].set(e.id, Math.max(e.expiresAt, maps[e.kind].get(e.id) ?? 0))
      }
    }
  }
  const trusted = () => cursor !== undefined && now() - Math.min(lastRead, lastBeat) < TRUST_MS

  async function beat (): Promise<void> {
    await feed.heartbeat(instance, cursor!, HEARTBEAT_TTL_MS)
    lastBeat = now()
  }

  async function run (): Promise<void> {
    let lastBeatSent = 0
    while (!stopped) {
      try {
        if (cursor === undefined) {
          const snap = await feed.snapshot()
          apply(snap.events)
          cursor = snap.cursor
          lastRead = now()
          await beat()
          log.info({ entries: replicaSize() }, 'revocation replica loaded')
        }
        const batch = await feed.read(cursor, BLOCK_MS)
        apply(batch.events)
        cursor = batch.cursor
        lastRead = now()
        // Ack at once after applying something; otherwise keep the heartbeat alive.
        if (batch.events.length > 0 || now() - lastBeatSent > TRUST_MS / 3) {
          await beat()
          lastBeatSent = now()
        }
      } catch (err) {
        if (stopped) return
        log.warn({ reason: 'replica-feed', err: (err as Error).message }, 'revocation feed broken; checking the store directly')
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    }
  }

  const sweep = setInterval(() => {
    const t = now() / 1000
    for (const [k, exp] of maps.jti) if (exp <= t) maps.jti.delete(k)
    for (const [k, exp] of maps.sid) if (exp <= t) maps.sid.delete(k)
    for (const [k, v] of maps.sub) if (v.expiresAt <= t) maps.sub.delete(k)
  }, 30_000)
  sweep.unref()

  function replicaSize (): number {
    return maps.jti.size + maps.sid.size + maps.sub.size
  }

  function localRevoked ({ jti, sid, sub, iat }: RevocationSubject): boolean {
    const t = now() / 1000
    if (jti !== undefined && (maps.jti.get(jti) ?? 0) > t) return true
    if (sid !== undefined && (maps.sid.get(sid) ?? 0) > t) return true
    if (sub !== undefined) {
      const cut = maps.sub.get(sub)
      if (cut !== undefined && cut.expiresAt > t && (iat === undefined || Math.floor(iat) <= cut.at)) return true
    }
    return false
  }

  /** Waits until every live instance acknowledged `position` (bounded by their heartbeat TTL). */
  async function propagate (event: RevocationEvent): Promise<void> {
    const position = await feed.publish(event)
    const deadline = now() + HEARTBEAT_TTL_MS + TRUST_MS
    while (now() < deadline) {
      const acks = await feed.liveAcks()
      let pending = 0
      for (const ack of acks.values()) if (ack !== undefined && compareCursor(ack, position) < 0) pending++
      if (pending === 0) return
      await new Promise((resolve) => setTimeout(resolve, ACK_POLL_MS))
    }
    throw new StoreUnavailableError('revocation not acknowledged by every live instance in time')
  }

  return {
    ...inner,
    async ready (timeoutMs) {
      // The feed loop starts once the store has answered (or given up for
      // now: it then runs and retries all the same), so that its first
      // read does not fail on a connection still being opened.
      try {
        await inner.ready(timeoutMs)
      } finally {
        if (follow) loop ??= run()
      }
    },
    isRevoked: (subject) => (trusted() ? Promise.resolve(localRevoked(subject)) : inner.isRevoked(subject)),
    revokedLocally: (subject) => (trusted() ? localRevoked(subject) : undefined),
    async revokeJti (jti, exp) {
      await inner.revokeJti(jti, exp)
      await propagate({ kind: 'jti', id: jti, expiresAt: exp })
    },
    async revokeSid (sid, ttl) {
      await inner.revokeSid(sid, ttl)
      await propagate({ kind: 'sid', id: sid, expiresAt: Math.ceil(now() / 1000 + ttl) })
    },
    async revokeSub (sub, at, ttl) {
      await inner.revokeSub(sub, at, ttl)
      await propagate({ kind: 'sub', id: sub, at, expiresAt: Math.ceil(now() / 1000 + ttl) })
    },
    replicaTrusted: trusted,
    replicaSize,
    async close () {
      stopped = true
      clearInterval(sweep)
      await feed.close()
      await loop?.catch(() => {})
      await inner.close()
    }
  }
}
