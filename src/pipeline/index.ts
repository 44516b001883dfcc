/**
 * The request pipeline, built once per config generation:
 *   match-route -> extract-token (-> check-csrf) -> verify-token -> check-revocation
 *     -> authorize-route -> map-claims
 * (path normalization and header stripping run in the adapter, before and
 * around it). Each step fills one slot of the context or throws one coded
 * error; nothing here knows Fastify.
 */
import { gatewayError } from '../errors.js'
import type { RequestContext, VerifiedToken } from './context.js'
import type { CompiledRoute, RouteTable } from './route-table.js'
import { extractToken, extractTokenFrom, type TokenCarriers } from './extract-token.js'
import type { TokenPolicies } from './token-policy.js'
import { checkCsrf } from './check-csrf.js'
import type { TokenVerifier } from './verify-token.js'
import type { RevocationCheck } from './check-revocation.js'
import { authorizeRoute, checkMethodOverride } from './authorize-route.js'

export interface PipelineParts {
  routes: RouteTable
  verifyToken: TokenVerifier
  checkRevocation: RevocationCheck
}

/** A request's token carriers and the config's token policies (cookie and query sources, CSRF origins). */
export interface TokenRequest extends TokenCarriers {
  policies: TokenPolicies
}

/**
 * `tokens`: every Authorization value (header only), or every carrier with
 * the policies. Returns nothing when every step could answer at once (a
 * cached token, a local revocation list), a promise otherwise; either way
 * a refusal is thrown (or rejected) as one coded error.
 */
export type Pipeline = (ctx: RequestContext, tokens: readonly string[] | TokenRequest) => void | Promise<void>

export function createPipeline ({ routes, verifyToken, checkRevocation }: PipelineParts): Pipeline {
  // Steps 5-7 once the token is verified.
  function admit (ctx: RequestContext, route: CompiledRoute, verified: VerifiedToken): void | Promise<void> {
    ctx.verified = verified
    const pending = checkRevocation(verified)
    if (pending !== undefined) return pending.then(() => { authorize(ctx, route, verified) })
    authorize(ctx, route, verified)
  }

  return function run (ctx, tokens) {
    const route = routes.match(ctx.path)
    if (route === undefined) throw gatewayError('JOTGATE_ROUTE_NOT_FOUND', { reason: 'no-route' })
    ctx.route = route
    checkMethodOverride(route, ctx.headers)
    if (route.auth === 'none') {
      authorizeRoute(route, ctx.method, undefined)
      return
    }
    const policy = 'policies' in tokens ? tokens.policies.forRoute(route) : undefined
    const found = 'policies' in tokens ? extractTokenFrom(tokens, policy!) : headerToken(tokens)
    if (found === undefined) {
      if (route.auth === 'required') throw gatewayError('JOTGATE_TOKEN_MISSING', { reason: 'no-token' })
      authorizeRoute(route, ctx.method, undefined)
      return
    }
    const token = found.token
    ctx.token = token
    ctx.tokenSource = found.source
    if (policy !== undefined) checkCsrf(ctx, policy.trustedOrigins, (tokens as TokenRequest).policies.trustProxy)
    const verified = verifyToken(token)
    if (verified instanceof Promise) return verified.then((v) => admit(ctx, route, v))
    return admit(ctx, route, verified)
  }
}

function authorize (ctx: RequestContext, route: CompiledRoute, verified: VerifiedToken): void {
  authorizeRoute(route, ctx.method, verified.claims)
  const mapped = verified.mapped
  if (mapped !== undefined && mapped.route === route) {
    ctx.identity = mapped.headers
    return
  }
  // Pure in (route, claims): kept on the verified token (which the cache
  // holds for its generation, as it holds the route) for its next request.
  const headers = route.mapHeaders(verified.claims)
  verified.mapped = { route, headers }
  ctx.identity = headers
}

function headerToken (authorization: readonly string[]): { token: string, source: 'header' } | undefined {
  const token = extractToken(authorization)
  return token === undefined ? undefined : { token, source: 'header' }
}
