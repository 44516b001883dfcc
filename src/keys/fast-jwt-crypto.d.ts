/**
 * fast-jwt's signature primitive (src/crypto.js of fast-jwt 6), the one its
 * own verifier calls once it has decoded a token; jotgate checks HMACs
 * with it. fast-jwt ships no types for it; this is the part jotgate uses.
 * test/unit/keys/key-table.test.ts pins its behaviour for HS256, HS384 and
 * HS512, so an upgrade that changes it fails there, not in production.
 */
declare module 'fast-jwt/src/crypto.js' {
  import type { KeyObject } from 'node:crypto'
  /**
   * True when `signature` (base64url, as in the token) signs `input` (the
   * token up to its last dot) with `key` under `algorithm`; false when it
   * does not. Throws fast-jwt's TokenError (code FAST_JWT_VERIFY_ERROR)
   * when node:crypto refuses the inputs (an ECDSA signature of the wrong
   * length, say).
   */
  export function verifySignature (algorithm: string, key: KeyObject, input: string, signature: string): boolean
}
