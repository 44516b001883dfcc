/**
 * Open WebSocket sessions and what ends them (CONTRACT section 7): the
 * token's expiry (exp + clockTolerance, a timer per session), its
 * revocation on any instance, and shutdown. Revocation is found by asking
 * the shared store about every open session once per SWEEP_MS, in one
 * batched pass (one question per distinct token; auto-pipelined on Redis,
 * answered from memory with store.replica), so a revocation made anywhere
 * closes its sockets within SWEEP_MS plus one store round trip after the
 * revocation call returned.
 */
import type { Logger } from 'pino'
import { StoreUnavailableError, type RevocationSubject, type Store } from '../store/types.js'
import { CLOSE, type Relay } from './ws-relay.js'
import type { Generation } from '../generation.js'

export const SWEEP_MS = 1000
// setTimeout's limit; a longer-lived token is rechecked when it fires.
const MAX_TIMER_MS = 2 ** 31 - 1

export interface Session {
  reqId: string
  route: string
  subject: RevocationSubject
  /** When the token stops being accepted (exp + clockTolerance), ms since the epoch. */
  expiresAt: number
  relay: Relay
  /**
   * Whether a new config generation still admits this session (route,
   * token, authorization); resolves false, or rejects, when it does not.
   */
  admittedBy?: (gen: Generation) => Promise<boolean>
}

export interface SessionRegistryOptions {
  store: Store
  log: Logger
  /** The current `store.onError`: deny closes sockets whose token cannot be checked. */
  onError: () => 'deny' | 'allow'
  onFailOpen: (cause: unknown) => void
  /** Told the close code of every session the gateway ends (metrics). */
  onEnd?: (code: number) => void
  now: () => number
}

export interface SessionRegistry {
  add: (session: Session) => void
  size: () => number
  /**
   * After a reload: closes, with 1008 (policy violation), every session the
   * new generation no longer admits (its route gone or no longer a
   * WebSocket route, its key removed, a rule it no longer meets).
   */
  recheck: (gen: Generation) => Promise<void>
  /** Closes every session with `code` and waits (at most about CLOSE_GRACE_MS) until they are closed. */
  closeAll: (code: number, reason: string) => Promise<void>
}

export function createSessionRegistry ({ store, log, onError, onFailOpen, onEnd, now }: SessionRegistryOptions): SessionRegistry {
  const sessions = new Set<Session>()
  const expiryTimers = new WeakMap<Session, NodeJS.Timeout>()
  let sweeping: NodeJS.Timeout | undefined

  const end = (session: Session, code: number, reason: string) => {
    if (!sessions.delete(session)) return
    log.info({ reqId: session.reqId, route: session.route, closeCode: code, reason }, 'websocket closed by the gateway')
    onEnd?.(code)
    session.relay.end(code, reason)
  }

  const scheduleSweep = () => {
    if (sweeping !== undefined || sessions.size === 0) return
    sweeping = setTimeout(() => { void sweep() }, SWEEP_MS)
    sweeping.unref()
  }

  async function sweep (): Promise<void> {
    const started = Date.now()
    const groups = new Map<string, Session[]>()
    for (const s of sessions) {
      // No token (auth: none, optional without one): nothing to revoke.
      if (s.subject.jti === undefined && s.subject.sid === undefined && s.subject.sub === undefined) continue
      const key = JSON.stringify([s.subject.jti, s.subject.sid, s.subject.sub, s.subject.iat])
      const group = groups.get(key)
      if (group === undefined) groups.set(key, [s])
      else group.push(s)
    }
    let failedOpen = false
    await Promise.all([...groups.values()].map(async (group) => {
      let close: [number, string] | undefined
      try {
        if (await store.isRevoked(group[0]!.subject)) close = [CLOSE.TOKEN_REVOKED, 'token revoked']
      } catch (cause) {
        // As for requests: only an unreachable store may fail open.
        if (cause instanceof StoreUnavailableError && onError() === 'allow') {
          if (!failedOpen) onFailOpen(cause)
          failedOpen = true
        } else {
          close = cause instanceof StoreUnavailableError ? [CLOSE.STORE_UNAVAILABLE, 'store unavailable'] : [CLOSE.INTERNAL, 'revocation check failed']
        }
      }
      if (close !== undefined) for (const s of group) end(s, close[0], close[1])
    }))
    // The next pass starts SWEEP_MS after this one started, never overlapping it.
    sweeping = undefined
    if (sessions.size > 0) {
      sweeping = setTimeout(() => { void sweep() }, Math.max(0, SWEEP_MS - (Date.now() - started)))
      sweeping.unref()
    }
  }

  const watchExpiry = (session: Session) => {
    const wait = session.expiresAt - now()
    if (wait <= 0) return end(session, CLOSE.TOKEN_EXPIRED, 'token expired')
    const timer = setTimeout(() => { if (sessions.has(session)) watchExpiry(session) }, Math.min(wait, MAX_TIMER_MS))
    timer.unref()
    expiryTimers.set(session, timer)
  }

  return {
    add (session) {
      sessions.add(session)
      void session.relay.closed.then(() => {
        sessions.delete(session)
        clearTimeout(expiryTimers.get(session))
      })
      watchExpiry(session)
      scheduleSweep()
    },
    size: () => sessions.size,
    async recheck (gen) {
      await Promise.all([...sessions].map(async (s) => {
        if (s.admittedBy === undefined) return
        const admitted = await s.admittedBy(gen).catch(() => false)
        if (!admitted) end(s, CLOSE.POLICY_VIOLATION, 'no longer allowed by the reloaded config')
      }))
    },
    async closeAll (code, reason) {
      const all = [...sessions]
      for (const s of all) end(s, code, reason)
      await Promise.all(all.map((s) => s.relay.closed))
    }
  }
}
