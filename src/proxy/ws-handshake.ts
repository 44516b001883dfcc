/**
 * The checks an upgrade request passes before anything is upgraded: the
 * request pipeline (steps 1 to 7, exactly as for any request), then what
 * RFC 6455 section 4.2.1 asks of a handshake, refused in our JSON rather
 * than left to ws.
 */
import type { IncomingMessage } from 'node:http'
import { gatewayError } from '../errors.js'
import { normalizeTarget } from '../pipeline/normalize-path.js'
import { authorizationValues, headerValues } from '../pipeline/extract-token.js'
import { tokenPolicies } from '../pipeline/token-policy.js'
import type { RequestContext } from '../pipeline/context.js'
import type { Generation } from '../generation.js'
import { countHeader } from './register.js'

// RFC 6455 section 4.1: a 16-byte nonce, base64; RFC 9110 token for subprotocols.
const KEY = /^[+/0-9A-Za-z]{22}==$/
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/**
 * Steps 1 to 7 for an upgrade request; returns the query as received.
 * Throws the refusal. A route without `websocket: true` refuses upgrades.
 */
export async function authorizeUpgrade (req: IncomingMessage, ctx: RequestContext, gen: Generation, closing: boolean): Promise<string> {
  if (closing) throw gatewayError('JOTGATE_SHUTTING_DOWN', { reason: 'shutting-down' })
  // Step 1: the same normalization as rewriteUrl gives every other request.
  const target = normalizeTarget(req.url ?? '')
  ctx.path = target.path
  const raw = req.rawHeaders
  if (req.headers.host === undefined) throw gatewayError('JOTGATE_BAD_REQUEST', { reason: 'host-missing' })
  if (countHeader(raw, 'host') > 1) throw gatewayError('JOTGATE_BAD_REQUEST', { reason: 'host-repeated' })
  const route = gen.routes.match(target.path)
  if (route === undefined) throw gatewayError('JOTGATE_ROUTE_NOT_FOUND', { reason: 'no-route' })
  ctx.route = route
  if (!route.websocket) throw gatewayError('JOTGATE_BAD_REQUEST', { reason: 'websocket-not-enabled' })
  if (ctx.method !== 'GET') throw gatewayError('JOTGATE_METHOD_NOT_ALLOWED', { reason: 'websocket-not-get', headers: { allow: 'GET' } })
  const key = req.headers['sec-websocket-key']
  if (typeof key !== 'string' || !KEY.test(key) || req.headers['sec-websocket-version'] !== '13') {
    throw gatewayError('JOTGATE_BAD_REQUEST', { reason: 'websocket-handshake', headers: { 'sec-websocket-version': '13' } })
  }
  offeredProtocols(req)
  await gen.pipeline(ctx, { authorization: authorizationValues(raw), cookie: headerValues(raw, 'cookie'), query: target.query, policies: tokenPolicies(gen.config) })
  return target.query
}

/** The subprotocols the client offered (RFC 6455 section 4.1); a malformed list is a 400. */
export function offeredProtocols (req: IncomingMessage): string[] {
  const header = req.headers['sec-websocket-protocol']
  if (header === undefined) return []
  const list = header.split(',').map((p) => p.trim())
  if (list.some((p) => !TOKEN.test(p)) || new Set(list).size !== list.length) {
    throw gatewayError('JOTGATE_BAD_REQUEST', { reason: 'websocket-protocol' })
  }
  return list
}
