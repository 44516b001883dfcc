/**
 * Signing the tokens jotgate issues (login, refresh, `jotgate token sign`),
 * with an eager fast-jwt signer per key.
 */
import { randomBytes } from 'node:crypto'
import { createSigner } from 'fast-jwt'
import type { KeyMaterial } from './material.js'

export type TokenSigner = (payload: Record<string, unknown>) => string

export function createTokenSigner (key: KeyMaterial): TokenSigner {
  const signKey = key.signKey
  if (signKey === undefined) throw new Error(`key ${key.kid} holds no private material`)
  const material = signKey.type === 'secret' ? signKey.export() : signKey.export({ type: 'pkcs8', format: 'pem' })
  const sign = createSigner({ key: material, algorithm: key.alg, kid: key.kid })
  return (payload) => sign(payload)
}

/** A random identifier for `jti` and `sid` (128 bits, base64url). */
export function randomId (): string {
  return randomBytes(16).toString('base64url')
}
