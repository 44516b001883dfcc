/**
 * Step 6: authorization by route. `methods` first (405 with Allow), then
 * every `require` rule (403 with error="insufficient_scope", RFC 6750 3.1).
 */
import { isDeepStrictEqual } from 'node:util'
import { gatewayError } from '../errors.js'
import type { RouteConfig } from '../config/schema.js'
import type { Claims } from './context.js'
import type { CompiledRoute } from './route-table.js'

/** One compiled rule; true when the claims satisfy it. */
export interface Requirement {
  reason: string
  test: (claims: Claims) => boolean
}

export function compileRequirements (require: RouteConfig['require']): Requirement[] {
  const out: Requirement[] = []
  if (require === undefined) return out
  if (require.roles !== undefined) {
    const wanted = require.roles
    // A string `roles` is one role; an array holds many.
    out.push({ reason: 'roles', test: (c) => wanted.some((r) => hasValue(c.roles, r)) })
  }
  if (require.scopes !== undefined) {
    const wanted = require.scopes
    out.push({ reason: 'scopes', test: (c) => { const held = scopesOf(c); return wanted.every((s) => held.has(s)) } })
  }
  if (require.clients !== undefined) {
    const wanted = new Set(require.clients)
    out.push({ reason: 'clients', test: (c) => typeof c.azp === 'string' && wanted.has(c.azp) })
  }
  for (const [path, expected] of Object.entries(require.claims ?? {})) {
    const parts = path.split('.')
    out.push({ reason: `claim:${path}`, test: (c) => isDeepStrictEqual(walk(c, parts), expected) })
  }
  return out
}

/**
 * Headers with which Express (method-override), Symfony, Laravel and
 * ASP.NET let a client say which method a request "really" has. On a route
 * limited by `methods`, each one present must name an allowed method too,
 * or a GET could act as a DELETE at such an upstream.
 */
export const METHOD_OVERRIDE_HEADERS = ['x-http-method-override', 'x-http-method', 'x-method-override'] as const

export function checkMethodOverride (route: CompiledRoute, headers: Readonly<Record<string, string | string[] | undefined>>): void {
  if (route.methods === undefined) return
  for (const name of METHOD_OVERRIDE_HEADERS) {
    const value = headers[name]
    if (value === undefined) continue
    for (const one of Array.isArray(value) ? value : [value]) {
      if (!route.methods.has(one.trim().toUpperCase())) {
        throw gatewayError('JOTGATE_METHOD_NOT_ALLOWED', { reason: 'method-override', headers: { allow: route.allow } })
      }
    }
  }
}

export function authorizeRoute (route: CompiledRoute, method: string, claims: Claims | undefined): void {
  if (route.methods !== undefined && !route.methods.has(method)) {
    throw gatewayError('JOTGATE_METHOD_NOT_ALLOWED', { reason: 'method', headers: { allow: route.allow } })
  }
  if (route.requirements.length === 0) return
  // An `optional` route without a token has no claims to meet a rule with.
  if (claims === undefined) throw gatewayError('JOTGATE_TOKEN_MISSING', { reason: 'required-by-rule' })
  for (const rule of route.requirements) {
    if (!rule.test(claims)) throw gatewayError('JOTGATE_FORBIDDEN', { reason: rule.reason })
  }
}

function hasValue (claim: unknown, value: string): boolean {
  if (typeof claim === 'string') return claim === value
  return Array.isArray(claim) && claim.includes(value)
}

/** RFC 8693 `scope` (space-separated) and the common `scp` (array or string). */
function scopesOf (claims: Claims): Set<string> {
  const held = new Set<string>()
  for (const source of [claims.scope, claims.scp]) {
    if (typeof source === 'string') for (const s of source.split(' ')) { if (s !== '') held.add(s) }
    else if (Array.isArray(source)) for (const s of source) { if (typeof s === 'string') held.add(s) }
  }
  return held
}

/** Own properties only: `__proto__` or `constructor` never resolve. */
export function walk (value: unknown, parts: readonly string[]): unknown {
  let current = value
  for (const part of parts) {
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, part)) return undefined
    current = (current as Record<string, unknown>)[part]
  }
  return current
}
