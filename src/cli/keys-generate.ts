/**
 * `jotgate keys generate --alg ALG [--kid K] --out DIR`: writes a new key
 * (or HMAC secret) for `tokens.keys` and prints its kid and config entry.
 */
import { generateKeyPair, randomBytes, type KeyObject } from 'node:crypto'
import { access, mkdir, open, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs, promisify } from 'node:util'
import { Document } from 'yaml'
import { ALGORITHMS, type Algorithm } from '../config/schema.js'
import { jwkThumbprint } from '../keys/jwk.js'
import type { CliIo } from './io.js'

/** RFC 7518 asks for at least 2048 bits; 3072 gives ~128-bit security (NIST SP 800-57). */
export const DEFAULT_RSA_BITS = 3072
const EC_CURVES: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' }
const HS_SECRET_BYTES = 64
/** The kid becomes a file name: no separators, and no leading dot ('.', '..', hidden files). */
const KID_PATTERN = /^(?!\.)[A-Za-z0-9._-]{1,128}$/

const HELP = `usage: jotgate keys generate --alg ALG [--kid K] --out DIR

Writes DIR/<kid>.key.pem (PKCS#8, mode 0600) and DIR/<kid>.pub.pem (SPKI, 0644),
or DIR/<kid>.secret (${HS_SECRET_BYTES} random bytes, 0600) for HS*. Existing files are never overwritten.
  RS*, PS*  RSA ${DEFAULT_RSA_BITS} bits (a safer default than the 2048-bit minimum)
  ES256/384/512  P-256 / P-384 / P-521;  EdDSA  Ed25519
Without --kid: the RFC 7638 thumbprint of the public key, or a random id for HS*.
Prints the kid, then the entry to paste into tokens.keys.`

const generatePair = promisify(generateKeyPair)

interface Output { file: string, data: Buffer | string, mode: number }

export async function run (args: string[], io: CliIo): Promise<number> {
  let values
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        alg: { type: 'string' },
        kid: { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h' }
      }
    }))
  } catch (err) {
    return usage(io, (err as Error).message)
  }
  if (values.help === true) {
    io.stdout(HELP)
    return 0
  }
  const alg = values.alg
  if (alg === undefined) return usage(io, '--alg is required')
  if (!isAlgorithm(alg)) return usage(io, `--alg must be one of ${ALGORITHMS.join(', ')}`)
  if (values.out === undefined || values.out === '') return usage(io, '--out DIR is required')
  if (values.kid !== undefined && !KID_PATTERN.test(values.kid)) {
    return usage(io, '--kid must be 1 to 128 of A-Z a-z 0-9 . _ - and not start with a dot')
  }
  const dir = values.out

  let kid: string
  let outputs: Output[]
  let entry: Record<string, unknown>
  if (alg.startsWith('HS')) {
    kid = values.kid ?? randomBytes(16).toString('base64url')
    const file = join(dir, `${kid}.secret`)
    outputs = [{ file, data: randomBytes(HS_SECRET_BYTES), mode: 0o600 }]
    entry = { kid, alg, secretFile: file, sign: true }
  } else {
    const { publicKey, privateKey } = await generate(alg)
    kid = values.kid ?? jwkThumbprint(publicKey)
    const keyFile = join(dir, `${kid}.key.pem`)
    outputs = [
      { file: keyFile, data: privateKey.export({ type: 'pkcs8', format: 'pem' }), mode: 0o600 },
      { file: join(dir, `${kid}.pub.pem`), data: publicKey.export({ type: 'spki', format: 'pem' }), mode: 0o644 }
    ]
    entry = { kid, alg, privateKeyFile: keyFile, sign: true }
  }

  for (const { file } of outputs) {
    if (await exists(file)) return fail(io, `${file} already exists; refusing to overwrite it`)
  }
  try {
    await mkdir(dir, { recursive: true })
  } catch (err) {
    return fail(io, `cannot create ${dir} (${errorCode(err)})`)
  }
  const written: string[] = []
  for (const output of outputs) {
    try {
      await writeExclusive(output)
      written.push(output.file)
    } catch (err) {
      // Leave no half-written pair behind (e.g. a private key without its public key).
      await Promise.all(written.map(async (file) => await unlink(file).catch(() => undefined)))
      if (errorCode(err) === 'EEXIST') return fail(io, `${output.file} already exists; refusing to overwrite it`)
      return fail(io, `cannot write ${output.file} (${errorCode(err)})`)
    }
  }
  io.stdout(kid)
  io.stdout(`- ${flowYaml(entry)}`)
  return 0
}

function isAlgorithm (value: string): value is Algorithm {
  return (ALGORITHMS as readonly string[]).includes(value)
}

async function generate (alg: Algorithm): Promise<{ publicKey: KeyObject, privateKey: KeyObject }> {
  if (alg === 'EdDSA') return await generatePair('ed25519', {})
  const curve = EC_CURVES[alg]
  if (curve !== undefined) return await generatePair('ec', { namedCurve: curve })
  return await generatePair('rsa', { modulusLength: DEFAULT_RSA_BITS })
}

/** 'wx' fails instead of following a file or symlink planted since the check. */
async function writeExclusive ({ file, data, mode }: Output): Promise<void> {
  const handle = await open(file, 'wx', mode)
  try {
    // The umask may have narrowed `mode`; the public key must still be readable.
    await handle.chmod(mode)
    await handle.writeFile(data)
  } finally {
    await handle.close()
  }
}

async function exists (file: string): Promise<boolean> {
  return await access(file).then(() => true, () => false)
}

/** A YAML flow mapping, quoting whatever needs it (a numeric kid, a path with a comma). */
function flowYaml (entry: Record<string, unknown>): string {
  const doc = new Document(entry)
  const contents = doc.contents as { flow?: boolean } | null
  if (contents !== null) contents.flow = true
  return doc.toString({ lineWidth: 0 }).trimEnd()
}

function errorCode (err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err)
}

function usage (io: CliIo, message: string): number {
  io.stderr(`error: ${message}`)
  return 2
}

function fail (io: CliIo, message: string): number {
  io.stderr(`error: ${message}`)
  return 1
}
