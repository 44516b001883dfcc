/**
 * The route table, compiled once at boot: first match wins, a route path is
 * a prefix on segment boundaries (`/public` matches `/public` and
 * `/public/x`, never `/publicity`), and nothing matched is a 404.
 */
import type { GatewayConfig, RouteConfig } from '../config/schema.js'
import { createHeaderMapper, type HeaderMapper } from './map-claims.js'
import { compileRequirements, type Requirement } from './authorize-route.js'
import { normalizeTarget } from './normalize-path.js'

export interface CompiledRoute {
  index: number
  /** The configured path: the route's label in logs and metrics. */
  label: string
  auth: RouteConfig['auth']
  /** `scheme://host:port` of the upstream. */
  origin: string
  methods: ReadonlySet<string> | undefined
  /** The `Allow` header of a 405. */
  allow: string
  requirements: readonly Requirement[]
  mapHeaders: HeaderMapper
  forwardAuthorization: boolean
  websocket: boolean
  /** The path sent upstream for a matched normalized path. */
  forwardPath: (path: string) => string
}

export interface RouteTable {
  routes: readonly CompiledRoute[]
  match: (path: string) => CompiledRoute | undefined
}

export function compileRoutes (config: GatewayConfig): RouteTable {
  const entries = config.routes.map((route, index) => {
    const prefix = trimSlash(normalizedPrefix(route.path))
    const upstream = new URL(route.upstream)
    const compiled: CompiledRoute = {
      index,
      label: route.path,
      auth: route.auth,
      origin: upstream.origin,
      methods: route.methods === undefined ? undefined : new Set(route.methods),
      allow: (route.methods ?? []).join(', '),
      requirements: compileRequirements(route.require),
      mapHeaders: createHeaderMapper({ ...config.claimHeaders, ...route.headers }),
      forwardAuthorization: route.forwardAuthorization,
      websocket: route.websocket,
      forwardPath: createRewriter(prefix, route.rewrite, upstream.pathname)
    }
    return { prefix, withSlash: prefix === '' ? '/' : `${prefix}/`, route: compiled }
  })
  return {
    routes: entries.map((e) => e.route),
    match (path) {
      for (const e of entries) {
        if (path === e.prefix || path.startsWith(e.withSlash)) return e.route
      }
      return undefined
    }
  }
}

/**
 * A route path normalized like a request path (CONTRACT step 1). Requests
 * are matched in normalized form, so a route written `/café` (which clients
 * send as `/caf%C3%A9`) or `/a"b` (sent as `/a%22b`) must be too, or it
 * would never match and its requests would fall through to a later, say
 * public, route. A path that cannot normalize is kept: it matches nothing,
 * and no request naming it gets past step 1.
 */
function normalizedPrefix (path: string): string {
  try {
    return normalizeTarget(path.replace(/[^\x00-\x7e]+/g, encodeURIComponent)).path
  } catch {
    return path
  }
}

/** `/a/` -> `/a`, `/` -> `` (the root prefix matches every path). */
function trimSlash (p: string): string {
  return p.endsWith('/') ? p.slice(0, -1) : p
}

/** Joins two path parts with exactly one slash between them. */
function join (a: string, b: string): string {
  if (b === '') return a === '' ? '/' : a
  if (a === '' || a === '/') return b
  return a.endsWith('/') ? a + b.slice(1) : a + b
}

function createRewriter (prefix: string, rewrite: string | undefined, basePath: string): (path: string) => string {
  const base = trimSlash(basePath)
  if (rewrite === undefined) return base === '' ? (path) => path : (path) => join(base, path)
  const target = join(base, rewrite)
  // `rewrite` replaces the matched prefix; the rest of the path follows it.
  return (path) => join(target, path.slice(prefix.length))
}
