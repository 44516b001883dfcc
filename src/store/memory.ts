/**
 * The memory store: one process only (the demo, a single instance). Entries
 * expire like Redis keys; a sweep every minute drops the dead ones so the
 * maps stay bounded by what is live.
 */
import type { RefreshRecord, RevocationSubject, SpendResult, Store } from './types.js'

interface Entry<T> { value: T, expiresAt: number }

export function createMemoryStore (now: () => number = Date.now): Store {
  const maps = {
    jti: new Map<string, Entry<true>>(),
    sid: new Map<string, Entry<true>>(),
    sub: new Map<string, Entry<number>>(),
    refresh: new Map<string, Entry<{ record: RefreshRecord, spent: boolean }>>(),
    hits: new Map<string, Entry<number>>()
  }
  const get = <T>(map: Map<string, Entry<T>>, key: string): T | undefined => {
    const entry = map.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= now()) {
      map.delete(key)
      return undefined
    }
    return entry.value
  }
  const sweep = setInterval(() => {
    const t = now()
    for (const map of Object.values(maps) as Map<string, Entry<unknown>>[]) {
      for (const [key, entry] of map) if (entry.expiresAt <= t) map.delete(key)
    }
  }, 60_000)
  sweep.unref()

  function revoked ({ jti, sid, sub, iat }: RevocationSubject): boolean {
    if (jti !== undefined && get(maps.jti, jti) === true) return true
    if (sid !== undefined && get(maps.sid, sid) === true) return true
    if (sub !== undefined) {
      const at = get(maps.sub, sub)
      if (at !== undefined && (iat === undefined || Math.floor(iat) <= at)) return true
    }
    return false
  }

  return {
    kind: 'memory',
    ready: async () => {},
    isHealthy: () => true,
    isRevoked: async (subject: RevocationSubject) => revoked(subject),
    revokedLocally: revoked,
    async revokeJti (jti, exp) {
      maps.jti.set(jti, { value: true, expiresAt: Math.max(exp * 1000, now() + 1000) })
    },
    async revokeSid (sid, ttl) {
      maps.sid.set(sid, { value: true, expiresAt: now() + ttl * 1000 })
    },
    async revokeSub (sub, at, ttl) {
      // Like the Redis script: the cut-off only moves forward, the TTL never shrinks.
      const current = maps.sub.get(sub)
      const live = current !== undefined && current.expiresAt > now() ? current : undefined
      maps.sub.set(sub, {
        value: Math.max(at, live?.value ?? at),
        expiresAt: Math.max(now() + ttl * 1000, live?.expiresAt ?? 0)
      })
    },
    subRevokedAt: async (sub) => get(maps.sub, sub),
    async putRefresh (hash, record) {
      maps.refresh.set(hash, { value: { record, spent: false }, expiresAt: record.expiresAt * 1000 })
    },
    async spendRefresh (hash): Promise<SpendResult> {
      const entry = get(maps.refresh, hash)
      if (entry === undefined) return { status: 'unknown' }
      if (entry.spent) return { status: 'reused', record: entry.record }
      entry.spent = true
      return { status: 'ok', record: entry.record }
    },
    async hit (key, windowMs) {
      const t = now()
      const entry = maps.hits.get(key)
      if (entry === undefined || entry.expiresAt <= t) {
        maps.hits.set(key, { value: 1, expiresAt: t + windowMs })
        return { count: 1, resetMs: windowMs }
      }
      entry.value += 1
      return { count: entry.value, resetMs: entry.expiresAt - t }
    },
    async close () {
      clearInterval(sweep)
    }
  }
}
