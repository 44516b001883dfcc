/**
 * HTTP on a socket whose request asked for an upgrade: Node hands such a
 * request to the server's 'upgrade' listener with the raw socket, so every
 * answer that is not a 101 is written here. Also the headers the upstream
 * WebSocket receives, built by the same rules as the HTTP proxy's.
 */
import { ServerResponse, type IncomingMessage, type Server } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { errorBody, wwwAuthenticate, type GatewayError } from '../errors.js'
import type { RequestContext } from '../pipeline/context.js'
import { tokenPolicies } from '../pipeline/token-policy.js'
import type { Generation } from '../generation.js'
import { setForwardedHeaders } from './forwarded-headers.js'
import { stripTokenCookies } from './forward-token.js'
import { stripIncoming } from './register.js'

type Headers = Record<string, string | string[] | number | undefined>

/** Handshake fields the upstream connection makes its own. */
const HANDSHAKE = ['host', 'connection', 'content-length', 'transfer-encoding', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol', 'sec-websocket-accept']
const RESPONSE_HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer'])

/** Writes a refusal (CONTRACT section 6 body, RFC 6750 challenge) and closes the socket. */
export function writeRefusal (socket: Duplex, err: GatewayError, tokenPresented: boolean, reqId: string): void {
  const body = JSON.stringify(errorBody(err))
  const headers: Record<string, string> = {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    'X-Request-Id': reqId,
    Connection: 'close'
  }
  const challenge = wwwAuthenticate(err, tokenPresented)
  if (challenge !== undefined) headers['WWW-Authenticate'] = challenge
  Object.assign(headers, err.headers)
  const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')
  if (!socket.writable) return void socket.destroy()
  socket.once('finish', () => socket.destroy())
  socket.end(`HTTP/1.1 ${err.statusCode} ${errorBody(err).error}\r\n${head}\r\n${body}`)
}

/** Passes the upstream's refusal of the handshake (a 401, a 404, ...) back as it came. */
export function writeUpstreamResponse (socket: Duplex, res: IncomingMessage): void {
  let head = `HTTP/1.1 ${res.statusCode ?? 502} ${res.statusMessage ?? ''}\r\n`
  for (let i = 0; i < res.rawHeaders.length; i += 2) {
    if (!RESPONSE_HOP_BY_HOP.has(res.rawHeaders[i]!.toLowerCase())) head += `${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}\r\n`
  }
  socket.write(`${head}Connection: close\r\n\r\n`)
  res.pipe(socket)
  res.once('error', () => socket.destroy())
}

/**
 * An upgrade to anything but WebSocket (`h2c`, ...) is served as the
 * ordinary request it also is (RFC 9110 section 7.8 lets a server ignore
 * Upgrade), through the same Fastify handler, on a connection then closed.
 */
export function serveAsHttp (server: Server, req: IncomingMessage, socket: Duplex): void {
  const res = new ServerResponse(req)
  res.shouldKeepAlive = false
  res.assignSocket(socket as Socket)
  res.once('finish', () => {
    res.detachSocket(socket as Socket)
    socket.once('finish', () => socket.destroy())
    socket.end()
  })
  server.emit('request', req, res)
}

/** The headers of the upstream handshake: the HTTP proxy's rules (steps 2 and 7), handshake fields left to the ws client. */
export function upstreamHeaders (req: IncomingMessage, ctx: RequestContext, gen: Generation, reqId: string): Headers {
  const route = ctx.route!
  const headers: Headers = { ...req.headers }
  // RFC 9110 section 7.6.1: fields named in Connection are hop-by-hop too.
  const named = String(req.headers.connection ?? '').split(',').map((n) => n.trim().toLowerCase()).filter((n) => n !== '')
  for (const name of [...HANDSHAKE, ...named]) delete headers[name]
  stripIncoming(headers, gen)
  stripTokenCookies(headers, route, tokenPolicies(gen.config))
  if (route.auth !== 'none' && !route.forwardAuthorization) delete headers.authorization
  // Set last: nothing the client sent can replace what the token says.
  if (ctx.identity !== undefined) Object.assign(headers, ctx.identity)
  headers['x-request-id'] = reqId
  setForwardedHeaders(headers, { remoteAddress: req.socket.remoteAddress, host: req.headers.host, proto: 'http' }, gen.config.server.trustProxy)
  return headers
}
