/**
 * CORS through @fastify/cors, answered by the gateway: per route (a
 * route's `cors` replaces the gateway's), preflights answered in an
 * onRequest hook registered before the token pipeline's, so a preflight
 * (which never carries credentials) needs no token and never reaches the
 * upstream. A refused origin gets no CORS header at all.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import cors, { type FastifyCorsOptions } from '@fastify/cors'
import { toSeconds } from '../config/duration.js'
import type { CorsConfig } from '../config/schema.js'
import { tokenPolicies } from '../pipeline/token-policy.js'
import { kTarget, type Generation } from '../generation.js'

export interface CorsOptions {
  generation: () => Generation
}

// Every request of a route whose preflights the gateway answers, refused origins included.
const kCorsRoute = Symbol('jotgate.corsRoute')
declare module 'fastify' {
  interface FastifyRequest { [kCorsRoute]?: boolean }
}

const NEVER = /(?!)/

export async function registerCors (app: FastifyInstance, { generation }: CorsOptions): Promise<void> {
  // @fastify/cors adds an `OPTIONS *` route so that preflights match some
  // route; the proxy's catch-all already takes OPTIONS on every path and the
  // two would collide. Its handler is never needed (preflights are answered
  // in the hook), so the route is kept out of reach by a constraint no Host
  // can meet.
  app.addHook('onRoute', (route) => {
    if (route.method === 'OPTIONS' && route.url === '*') route.constraints = { host: NEVER }
  })
  await app.register(cors, {
    hook: 'onRequest',
    delegator: (request: FastifyRequest, callback: (error: Error | null, options: FastifyCorsOptions) => void) => {
      callback(null, optionsFor(request, generation()))
    }
  })
  // A preflight from a refused origin on a CORS route: answered here, empty
  // and without CORS headers (the browser then blocks the real request).
  app.addHook('onRequest', (request, reply, done) => {
    if (request[kCorsRoute] === true && isPreflight(request) && !reply.sent) reply.code(204).header('vary', 'Origin').send()
    else done()
  })
}

const NO_CORS: FastifyCorsOptions = Object.freeze({ origin: false })

function optionsFor (request: FastifyRequest, gen: Generation): FastifyCorsOptions {
  const policies = tokenPolicies(gen.config)
  if (!policies.anyCors) return NO_CORS
  // Proxied paths take their route's settings; the gateway's own endpoints
  // (token endpoints, JWKS) and unmatched paths the gateway's.
  const proxied = request.routeOptions.url === '/*' || request.routeOptions.url === '/'
  const route = proxied ? gen.routes.match(request.raw[kTarget]?.path ?? '/') : undefined
  const config = route === undefined ? policies.gateway.cors : policies.forRoute(route).cors
  if (config === undefined) return { origin: false }
  request[kCorsRoute] = true
  const origin = request.headers.origin
  if (origin === undefined || !allowed(config, origin)) return { origin: false }
  return {
    origin: config.origins.includes('*') ? '*' : origin,
    credentials: config.credentials,
    methods: config.methods,
    allowedHeaders: config.headers,
    ...(config.exposeHeaders.length === 0 ? {} : { exposedHeaders: config.exposeHeaders }),
    maxAge: toSeconds(config.maxAge),
    // Only a real preflight is answered here; an actual OPTIONS request
    // from an allowed origin goes on to the token pipeline and the upstream.
    preflight: isPreflight(request),
    strictPreflight: false
  }
}

function allowed (config: CorsConfig, origin: string): boolean {
  return config.origins.includes('*') || config.origins.includes(origin)
}

function isPreflight (request: FastifyRequest): boolean {
  return request.method === 'OPTIONS' && request.headers.origin !== undefined && request.headers['access-control-request-method'] !== undefined
}
