/**
 * HS256/384/512 signature checks (RFC 7518 section 3.2) for one secret,
 * with the key's padded blocks computed once:
 *
 *   HMAC(K, m) = H((K' ^ opad) || H((K' ^ ipad) || m))   (RFC 2104)
 *
 * where K' is the secret (hashed first when it is longer than the hash's
 * block) zero-filled to the block. Each check is then two calls of
 * node:crypto's one-shot `hash`. node's `createHmac` does the same work
 * but, under OpenSSL 3, looks the digest and the HMAC implementation up
 * again on every call (on a slower machine, 17 of the 24-28 µs a check
 * cost in the gateway were createHmac's constructor). Side by side in the
 * gateway with every request checked, this costs 4-5 µs of main-thread
 * CPU less per check than createHmac did. The hash is still OpenSSL's;
 * only the two-line construction is written here, and
 * test/unit/keys/hmac.test.ts holds it to createHmac's answers for every
 * algorithm and key length class.
 */
import { createHash, hash, timingSafeEqual, type KeyObject } from 'node:crypto'

export type HmacAlgorithm = 'HS256' | 'HS384' | 'HS512'

/** Block sizes in bytes of SHA-256 and of SHA-384/512 (FIPS 180-4). */
const BLOCK: Record<HmacAlgorithm, number> = { HS256: 64, HS384: 128, HS512: 128 }
/** Their output sizes in bytes. */
const DIGEST: Record<HmacAlgorithm, number> = { HS256: 32, HS384: 48, HS512: 64 }

/**
 * A checker of `alg` signatures made with `secret` (a secret KeyObject):
 * true when `signature` (the bytes of the token's third segment) is the
 * HMAC of `input` (the token up to its last dot). Compared in constant
 * time; a signature of another length is false.
 */
export function hmacVerifier (alg: HmacAlgorithm, secret: KeyObject): (input: string, signature: Buffer) => boolean {
  const digest = `sha${alg.slice(2)}`
  const block = BLOCK[alg]
  let key = secret.export()
  if (key.length > block) key = createHash(digest).update(key).digest()
  const inner = Buffer.alloc(block, 0x36)
  const outer = Buffer.alloc(block, 0x5c)
  for (let i = 0; i < key.length; i++) {
    inner[i]! ^= key[i]!
    outer[i]! ^= key[i]!
  }
  // The blocks hashed are built in place: the inner pad, then the input
  // (grown when a longer one comes); the outer pad, then the inner hash.
  // Hashes come back as latin1 strings (node's 'binary': one char per
  // byte) written into buffers made once: a Buffer answer costs a new
  // ArrayBuffer per hash, about as much as the hash itself. Checks run one
  // at a time on the main thread, so one set of buffers serves them all.
  let innerBlock = Buffer.alloc(block + 1024)
  inner.copy(innerBlock)
  const outerBlock = Buffer.alloc(block + DIGEST[alg])
  outer.copy(outerBlock)
  const mac = Buffer.alloc(DIGEST[alg])
  return (input, signature) => {
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    if (block + input.length * 3 > innerBlock.length) {
      innerBlock = Buffer.alloc(block + input.length * 3)
      inner.copy(innerBlock)
    }
    const length = block + innerBlock.write(input, block)
    outerBlock.write(hash(digest, innerBlock.subarray(0, length), 'binary'), block, 'latin1')
    mac.write(hash(digest, outerBlock, 'binary'), 0, 'latin1')
    return signature.length === mac.length && timingSafeEqual(mac, signature)
  }
}
