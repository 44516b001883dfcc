/**
 * `POST /revocations` on the admin listener: `{jti, exp}`, `{sid}` or
 * `{sub}`. Answers 201 only after the store has recorded it.
 */
import type { FastifyInstance } from 'fastify'
import { gatewayError } from '../errors.js'
import { createRevoker } from '../store/revoker.js'
import type { Store } from '../store/types.js'
import type { Generation } from '../generation.js'

/** 9999-12-31T23:59:59Z, in seconds. */
const MAX_EXP = 253_402_300_799

export type RevocationRequest = { jti: string, exp: number } | { sid: string } | { sub: string }

/** Validates a revocation body; throws JOTGATE_BAD_REQUEST saying what is wrong. */
export function parseRevocation (body: unknown): RevocationRequest {
  const bad = (reason: string) => gatewayError('JOTGATE_BAD_REQUEST', { reason })
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw bad('body-not-object')
  const b = body as Record<string, unknown>
  const kinds = ['jti', 'sid', 'sub'].filter((k) => b[k] !== undefined)
  if (kinds.length !== 1) throw bad('one-of-jti-sid-sub')
  const kind = kinds[0]!
  const value = b[kind]
  if (typeof value !== 'string' || value.length === 0 || value.length > 512) throw bad(`${kind}-type`)
  const allowed = kind === 'jti' ? ['jti', 'exp'] : [kind]
  if (Object.keys(b).some((k) => !allowed.includes(k))) throw bad('unknown-field')
  if (kind === 'jti') {
    // A NumericDate (RFC 7519 section 2) no later than year 9999: beyond
    // that it is not a real `exp`, and Redis would refuse the expiry (503).
    if (typeof b.exp !== 'number' || !Number.isFinite(b.exp) || b.exp <= 0 || b.exp > MAX_EXP) throw bad('exp-type')
    return { jti: value, exp: b.exp }
  }
  return kind === 'sid' ? { sid: value } : { sub: value }
}

/** Applies a revocation through the store of the current config. */
export async function applyRevocation (gen: Generation, store: Store, request: RevocationRequest): Promise<void> {
  const revoker = createRevoker(gen.config, store)
  if ('jti' in request) await revoker.jti(request.jti, request.exp)
  else if ('sid' in request) await revoker.sid(request.sid)
  else await revoker.sub(request.sub)
}

export function registerRevocationRoute (admin: FastifyInstance, { store, generation }: { store: Store, generation: () => Generation }): void {
  admin.post('/revocations', async (request, reply) => {
    const revocation = parseRevocation(request.body)
    try {
      await applyRevocation(generation(), store, revocation)
    } catch (cause) {
      throw gatewayError('JOTGATE_STORE_UNAVAILABLE', { reason: 'store-write', cause })
    }
    request.log.info({ revocation }, 'revoked')
    return reply.code(201).send({ revoked: revocation })
  })
}
