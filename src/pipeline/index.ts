/**
 * The request pipeline, built once per config generation:
 *   match-route -> extract-token -> verify-token -> check-revocation
 *     -> authorize-route -> map-claims
 * (path normalization and header stripping run in the adapter, before and
 * around it). Each step fills one slot of the context or throws one coded
 * error; nothing here knows Fastify.
 */
import { gatewayError } from '../errors.js'
import type { RequestContext } from './context.js'
import type { RouteTable } from './route-table.js'
import { extractToken } from './extract-token.js'
import type { TokenVerifier } from './verify-token.js'
import type { RevocationCheck } from './check-revocation.js'
import { authorizeRoute } from './authorize-route.js'

export interface PipelineParts {
  routes: RouteTable
  verifyToken: TokenVerifier
  checkRevocation: RevocationCheck
}

export type Pipeline = (ctx: RequestContext, authorization: readonly string[]) => Promise<void>

export function createPipeline ({ routes, verifyToken, checkRevocation }: PipelineParts): Pipeline {
  return async function run (ctx, authorization) {
    const route = routes.match(ctx.path)
    if (route === undefined) throw gatewayError('JOTGATE_ROUTE_NOT_FOUND', { reason: 'no-route' })
    ctx.route = route
    if (route.auth === 'none') {
      authorizeRoute(route, ctx.method, undefined)
      return
    }
    const token = extractToken(authorization)
    if (token === undefined) {
      if (route.auth === 'required') throw gatewayError('JOTGATE_TOKEN_MISSING', { reason: 'no-token' })
      authorizeRoute(route, ctx.method, undefined)
      return
    }
    ctx.token = token
    const verified = await verifyToken(token)
    ctx.verified = verified
    await checkRevocation(verified)
    authorizeRoute(route, ctx.method, verified.claims)
    ctx.identity = route.mapHeaders(verified.claims)
  }
}
