/**
 * WebSocket routes (`websocket: true`). The server's 'upgrade' event is
 * handled here, with `ws`: the upgrade request goes through the whole
 * pipeline first (path normalized once, headers stripped, token taken,
 * verified, revocation-checked, route authorized, claims mapped) and is
 * refused with the usual JSON body and status before anything is
 * upgraded. Then the upstream WebSocket is opened with the identity
 * headers, and only once it accepted is the client's handshake completed
 * (an unreachable upstream is a 502, its own refusal is passed back).
 * Frames then flow both ways until either side closes, the token expires
 * or is revoked (ws-sessions.ts), or the gateway shuts down (1001).
 */
import { revocationSubject } from '../pipeline/check-revocation.js'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { WebSocket, WebSocketServer } from 'ws'
import { gatewayError, isGatewayError, type GatewayError } from '../errors.js'
import { toMs, toSeconds } from '../config/duration.js'
import { tokenPolicies } from '../pipeline/token-policy.js'
import { authorizeRoute } from '../pipeline/authorize-route.js'
import type { RequestContext } from '../pipeline/context.js'
import type { Generation } from '../generation.js'
import type { Store } from '../store/types.js'
import type { Metrics } from '../admin/metrics.js'
import type { AnsweredRequest } from '../log.js'
import { requestIdOf } from './forwarded-headers.js'
import { forwardedQuery } from './forward-token.js'
import { relay, CLOSE } from './ws-relay.js'
import { createSessionRegistry, type SessionRegistry } from './ws-sessions.js'
import { serveAsHttp, upstreamHeaders, writeRefusal, writeUpstreamResponse } from './ws-http.js'
import { authorizeUpgrade, offeredProtocols } from './ws-handshake.js'

/** Largest message relayed either way (ws closes the socket with 1009 beyond it). */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024
const kProtocol = Symbol('jotgate.wsProtocol')
declare module 'node:http' {
  interface IncomingMessage { [kProtocol]?: string }
}

export interface WebSocketOptions {
  generation: () => Generation
  store: Store
  log: Logger
  metrics: Metrics
  /** Counts the upgrade's answer and writes its request line. */
  answered: AnsweredRequest
  state: { shuttingDown: boolean }
  now?: () => number
}

export function attachWebSockets (app: FastifyInstance, { generation, store, log, metrics, answered, state, now = Date.now }: WebSocketOptions): SessionRegistry {
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    maxPayload: MAX_MESSAGE_BYTES,
    // The client gets the subprotocol the upstream chose, or none.
    handleProtocols: (_offered, req) => req[kProtocol] ?? false
  })
  const sessions = createSessionRegistry({
    store,
    log,
    now,
    onError: () => generation().config.store.onError,
    onFailOpen: (cause) => {
      metrics.failOpen()
      log.warn({ reason: 'store-fail-open', err: cause }, 'store unavailable; open websockets kept (store.onError: allow)')
    },
    onEnd: metrics.webSocketClosed
  })
  metrics.countWebSockets(sessions.size)
  let closing = false

  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy())
    if (String(req.headers.upgrade).toLowerCase() !== 'websocket') return serveAsHttp(app.server, req, socket)
    void upgrade(req, socket, head)
  })
  app.addHook('preClose', async () => {
    closing = true
    await sessions.closeAll(CLOSE.GOING_AWAY, 'gateway shutting down')
  })

  async function upgrade (req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const started = performance.now()
    const gen = generation()
    const reqId = requestIdOf(req.headers['x-request-id'])
    const ctx: RequestContext = { method: req.method ?? 'GET', path: '/', headers: req.headers, websocket: true }
    const done = (status: number, refusal?: GatewayError) => {
      answered(reqId, ctx.method, ctx.route?.label ?? '(none)', status, refusal, performance.now() - started, true)
    }
    const refuse = (err: unknown) => {
      const refusal = isGatewayError(err) ? err : gatewayError('JOTGATE_INTERNAL', { reason: 'internal', cause: err })
      if (refusal.statusCode >= 500 && refusal.cause !== undefined) log.warn({ reqId, code: refusal.code, err: refusal.cause }, 'refusal cause')
      const presented = refusal.code === 'JOTGATE_TOKEN_AMBIGUOUS' || refusal.code === 'JOTGATE_TOKEN_MALFORMED' ||
        (refusal.code !== 'JOTGATE_TOKEN_MISSING' && (ctx.token !== undefined || req.headers.authorization !== undefined))
      writeRefusal(socket, refusal, presented, reqId)
      done(refusal.statusCode, refusal)
    }

    let query: string
    try {
      query = await authorizeUpgrade(req, ctx, gen, closing || state.shuttingDown)
    } catch (err) {
      return refuse(err)
    }
    const route = ctx.route!
    const url = `${route.origin.replace(/^http/, 'ws')}${route.forwardPath(ctx.path)}${forwardedQuery(query, route, tokenPolicies(gen.config))}`
    const upstream = new WebSocket(url, offeredProtocols(req), {
      headers: upstreamHeaders(req, ctx, gen, reqId) as Record<string, string>,
      perMessageDeflate: false,
      maxPayload: MAX_MESSAGE_BYTES,
      followRedirects: false
    })
    let settled = false
    const settle = () => {
      if (settled) return false
      settled = true
      clearTimeout(timer)
      socket.off('close', clientGone)
      return true
    }
    const fail = (err: GatewayError) => {
      if (!settle()) return
      upstream.terminate()
      refuse(err)
    }
    const clientGone = () => { if (settle()) upstream.terminate() }
    const timer = setTimeout(() => fail(gatewayError('JOTGATE_UPSTREAM_TIMEOUT', { reason: 'upstream-timeout' })), toMs(gen.config.server.upstreamTimeout))
    socket.once('close', clientGone)
    upstream.on('error', (cause) => fail(gatewayError('JOTGATE_UPSTREAM_UNAVAILABLE', { reason: 'upstream-error', cause })))
    upstream.once('unexpected-response', (upReq, res) => {
      if (!settle()) return
      writeUpstreamResponse(socket, res)
      res.once('end', () => upReq.destroy())
      done(res.statusCode ?? 502)
    })
    upstream.once('open', () => {
      if (!settle()) return upstream.terminate()
      if (upstream.protocol !== '') req[kProtocol] = upstream.protocol
      // Synchronous: no frame of the upstream can arrive before the relay
      // listens. ws may still drop a client that left meanwhile.
      let paired = false
      wss.handleUpgrade(req, socket, head, (client) => {
        paired = true
        done(101)
        const claims = ctx.verified?.claims ?? {}
        const exp = ctx.verified?.exp
        sessions.add({
          reqId,
          route: route.label,
          subject: revocationSubject(claims),
          expiresAt: exp === undefined ? Infinity : (exp + toSeconds(gen.config.tokens.clockTolerance)) * 1000,
          relay: relay(client, upstream),
          admittedBy: async (next) => {
            const now = next.routes.match(ctx.path)
            if (now === undefined || !now.websocket || now.origin !== route.origin) return false
            // The token is checked again by the new generation (keys,
            // issuers, audiences may have changed); revocation is the sweep's.
            const verified = ctx.token === undefined ? undefined : await next.verifyToken(ctx.token)
            if (now.auth === 'required' && verified === undefined) return false
            authorizeRoute(now, ctx.method, verified?.claims)
            return true
          }
        })
      })
      if (!paired) upstream.terminate()
    })
  }

  return sessions
}
