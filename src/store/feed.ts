/**
 * The revocation feed: what a local replica of the revocation list needs
 * from the shared store. Redis implements it with a stream (the events),
 * a sorted set of live instances and one ack key per instance.
 */

/** One revocation as the replicas see it. */
export interface RevocationEvent {
  kind: 'jti' | 'sid' | 'sub'
  id: string
  /** For `sub`: the cut-off time (seconds). */
  at?: number
  /** Seconds since the epoch; the replica forgets the entry then. */
  expiresAt: number
}

export interface FeedBatch {
  events: RevocationEvent[]
  /** Opaque position after these events (a stream id); compare with compareCursor. */
  cursor: string
}

export interface RevocationFeed {
  /** Every event that can still be live, and the position after them. */
  snapshot: () => Promise<FeedBatch>
  /** Events after `cursor`, waiting up to `blockMs` for one. */
  read: (cursor: string, blockMs: number) => Promise<FeedBatch>
  /** Appends an event; resolves with its position. */
  publish: (event: RevocationEvent) => Promise<string>
  /** Says that `instance` has applied everything up to `cursor`, alive for `ttlMs`. */
  heartbeat: (instance: string, cursor: string, ttlMs: number) => Promise<void>
  /** Positions acknowledged by the instances alive right now. */
  liveAcks: () => Promise<Map<string, string | undefined>>
  /** Stops blocking reads. */
  close: () => Promise<void>
}

/** Orders two stream ids (`<ms>-<seq>`): negative, zero or positive. */
export function compareCursor (a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-')
  const [bm = '0', bs = '0'] = b.split('-')
  if (am.length !== bm.length) return am.length - bm.length
  if (am !== bm) return am < bm ? -1 : 1
  return Number(as) - Number(bs)
}
