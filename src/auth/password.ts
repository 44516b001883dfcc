/**
 * Password hashes of the users file: scrypt in a PHC-like string (what
 * `jotgate hash-password` prints) and bcrypt `$2a$`/`$2b$`/`$2y$` hashes.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'
import bcrypt from 'bcryptjs'

/** N = 2^17, r = 8, p = 1: OWASP's scrypt baseline, ~0.3 s and 128 MiB per hash. */
export const DEFAULT_SCRYPT = { ln: 17, r: 8, p: 1 } as const
const SALT_BYTES = 16
const KEY_BYTES = 32
/** Node's default maxmem (32 MiB) is below what N = 2^17, r = 8 needs (128 MiB). */
const MAX_MEMORY = 256 * 1024 * 1024

// Bounds on parameters read from a hash: a hostile or mistyped users file
// must not make a login take minutes or exhaust memory (a cheap DoS).
const SCRYPT_LIMITS = { ln: [10, 20], r: [1, 32], p: [1, 16] } as const
const BCRYPT_COST = [4, 15] as const

const SCRYPT_HASH = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]{11,88})\$([A-Za-z0-9+/]{22,88})$/
const BCRYPT_HASH = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/

function scryptKey (password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keylen, options, (err, key) => { err === null ? resolve(key) : reject(err) })
  })
}

/** Standard base64 without padding, as in the PHC string format. */
function b64 (bytes: Buffer): string {
  return bytes.toString('base64').replace(/=+$/, '')
}

/** An scrypt hash: `$scrypt$ln=17,r=8,p=1$<salt>$<hash>` (base64 without padding). */
export async function hashPassword (password: string): Promise<string> {
  const { ln, r, p } = DEFAULT_SCRYPT
  const salt = randomBytes(SALT_BYTES)
  const key = await scryptKey(password, salt, KEY_BYTES, { N: 2 ** ln, r, p, maxmem: MAX_MEMORY })
  return `$scrypt$ln=${ln},r=${r},p=${p}$${b64(salt)}$${b64(key)}`
}

/**
 * Constant-time verification; supports the `$scrypt$` format above and bcrypt
 * `$2a$`/`$2b$`/`$2y$` hashes. Returns false (never throws) for a malformed hash.
 */
export async function verifyPassword (password: string, hash: string): Promise<boolean> {
  try {
    if (hash.startsWith('$scrypt$')) return await verifyScrypt(password, hash)
    if (hash.startsWith('$2')) return await verifyBcrypt(password, hash)
  } catch {
    // A hash that passed the checks below but still fails (e.g. memory) is unusable, not an error to surface.
  }
  return false
}

async function verifyScrypt (password: string, hash: string): Promise<boolean> {
  const match = SCRYPT_HASH.exec(hash)
  if (match === null) return false
  const [ln, r, p] = [Number(match[1]), Number(match[2]), Number(match[3])]
  if (!within(ln, SCRYPT_LIMITS.ln) || !within(r, SCRYPT_LIMITS.r) || !within(p, SCRYPT_LIMITS.p)) return false
  const N = 2 ** ln
  // scrypt needs about 128 * r * (N + p) bytes; refuse rather than let OpenSSL fail late.
  if (128 * r * (N + 2 + p) > MAX_MEMORY) return false
  const salt = Buffer.from(match[4]!, 'base64')
  const expected = Buffer.from(match[5]!, 'base64')
  const key = await scryptKey(password, salt, expected.length, { N, r, p, maxmem: MAX_MEMORY })
  return timingSafeEqual(key, expected)
}

async function verifyBcrypt (password: string, hash: string): Promise<boolean> {
  const match = BCRYPT_HASH.exec(hash)
  if (match === null || !within(Number(match[1]), BCRYPT_COST)) return false
  // bcryptjs compares the encoded hashes without an early exit.
  return await bcrypt.compare(password, hash)
}

function within (value: number, [min, max]: readonly [number, number]): boolean {
  return Number.isInteger(value) && value >= min && value <= max
}

let dummy: Promise<string> | undefined

/**
 * A valid hash of a random password, computed once. Verifying against it for
 * unknown users spends the same time as for known ones, so login timing does
 * not reveal which usernames exist.
 */
export function dummyHash (): Promise<string> {
  if (dummy === undefined) {
    dummy = hashPassword(randomBytes(32).toString('base64url'))
    // Do not cache a failure: the next caller tries again.
    dummy.catch(() => { dummy = undefined })
  }
  return dummy
}
