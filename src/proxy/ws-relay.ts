/**
 * Frames between a client WebSocket and its upstream WebSocket, both ways,
 * with backpressure, and close handshakes carried across: a side that
 * closes with a code passes it on; a side that vanishes (1006) becomes
 * 1001 towards the upstream and 1014 (bad gateway) towards the client.
 */
import { WebSocket, type RawData } from 'ws'

/** Close codes the gateway sends (README "Browsers and WebSockets"). */
export const CLOSE = {
  GOING_AWAY: 1001,
  POLICY_VIOLATION: 1008,
  INTERNAL: 1011,
  STORE_UNAVAILABLE: 1013,
  BAD_GATEWAY: 1014,
  TOKEN_EXPIRED: 4001,
  TOKEN_REVOKED: 4003
} as const

/** A peer that does not answer the closing handshake within this is cut off. */
export const CLOSE_GRACE_MS = 1000
const HIGH_WATER = 1 << 20
const LOW_WATER = 1 << 18

export interface Relay {
  /** Closes both sides with `code` (the gateway ends the session). */
  end: (code: number, reason: string) => void
  /** Resolves once both sides are closed. */
  closed: Promise<void>
}

export function relay (client: WebSocket, upstream: WebSocket): Relay {
  forward(client, upstream)
  forward(upstream, client)
  // Errors are followed by 'close', which carries the session's end.
  client.on('error', () => {})
  upstream.on('error', () => {})
  client.on('close', (code, reason) => closeWith(upstream, code, reason, CLOSE.GOING_AWAY))
  upstream.on('close', (code, reason) => closeWith(client, code, reason, CLOSE.BAD_GATEWAY))
  const closed = Promise.all([whenClosed(client), whenClosed(upstream)]).then(() => {})
  return {
    end (code, reason) {
      closeWith(client, code, Buffer.from(reason), code)
      closeWith(upstream, code, Buffer.from(reason), code)
    },
    closed
  }
}

function forward (from: WebSocket, to: WebSocket): void {
  let paused = false
  from.on('message', (data: RawData, isBinary: boolean) => {
    if (to.readyState !== WebSocket.OPEN) return
    to.send(data as Buffer, { binary: isBinary }, () => {
      if (paused && to.bufferedAmount < LOW_WATER) {
        paused = false
        from.resume()
      }
    })
    // A slow reader must not make the gateway buffer without bound.
    if (!paused && to.bufferedAmount > HIGH_WATER) {
      paused = true
      from.pause()
    }
  })
}

/** Starts the closing handshake on `ws` unless it is already closing; cuts it off if the peer stays silent. */
function closeWith (ws: WebSocket, code: number, reason: Buffer, fallback: number): void {
  if (ws.readyState === WebSocket.CLOSING || ws.readyState === WebSocket.CLOSED) return
  if (ws.readyState === WebSocket.CONNECTING) {
    ws.terminate()
    return
  }
  // 1005 (no code) and 1006 (no close frame) are never sent on the wire.
  if (code === 1005) ws.close()
  else if (sendable(code)) ws.close(code, reason)
  else ws.close(fallback)
  setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref()
}

function sendable (code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999)
}

function whenClosed (ws: WebSocket): Promise<void> {
  return ws.readyState === WebSocket.CLOSED ? Promise.resolve() : new Promise((resolve) => ws.once('close', () => resolve()))
}
