/**
 * `jotgate hash-password`: reads a password from stdin and prints a hash
 * that the users file accepts. Reading stdin (not argv) keeps the password
 * out of shell history and `ps`.
 */
import { parseArgs } from 'node:util'
import { hashPassword } from '../auth/password.js'
import type { CliIo } from './io.js'

const HELP = `usage: jotgate hash-password < password.txt

Reads the password from stdin (one trailing newline is not part of it) and
prints an scrypt hash for the "password" field of the users file.`

export async function run (args: string[], io: CliIo): Promise<number> {
  let help: boolean | undefined
  try {
    ({ values: { help } } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: { help: { type: 'boolean', short: 'h' } }
    }))
  } catch (err) {
    io.stderr(`error: ${(err as Error).message}`)
    return 2
  }
  if (help === true) {
    io.stdout(HELP)
    return 0
  }
  if (io.stdin === undefined) {
    io.stderr('error: no standard input to read the password from')
    return 1
  }
  const password = await readPassword(io.stdin)
  if (password === '') {
    io.stderr('error: the password is empty')
    return 1
  }
  io.stdout(await hashPassword(password))
  return 0
}

/** The password on `stream`: everything, less one trailing newline. */
export async function readPassword (stream: NodeJS.ReadableStream): Promise<string> {
  return stripOneNewline(await readAll(stream))
}

async function readAll (stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) {
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk)
  }
  // Decode once at the end: a multi-byte character may straddle two chunks.
  return Buffer.concat(chunks).toString('utf8')
}

/** `echo pw |` adds '\n' (and Windows tools '\r\n'); anything before it is the password. */
function stripOneNewline (text: string): string {
  if (text.endsWith('\r\n')) return text.slice(0, -2)
  if (text.endsWith('\n')) return text.slice(0, -1)
  return text
}
