/**
 * The jotgate CLI: one file per command, each exporting run(args, io).
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { CliIo } from './io.js'

const COMMANDS: Record<string, () => Promise<{ run: (args: string[], io: CliIo) => Promise<number> }>> = {
  start: () => import('./start.js'),
  check: () => import('./check.js'),
  token: () => import('./token.js'),
  keys: () => import('./keys.js'),
  'hash-password': () => import('./hash-password.js'),
  revoke: () => import('./revoke.js')
}

const USAGE = `usage: jotgate <command> [options]

  start [--config FILE]             run the gateway
  check [--config FILE]             validate the config and its keys
  token sign --config FILE --sub S [--claim k=v]... [--ttl 10m] [--aud A] [--kid K]
  token verify --config FILE TOKEN
  keys generate --alg ALG [--kid K] --out DIR
  hash-password                     read a password on stdin, print its hash
  revoke --config FILE (--jti ID --exp UNIX | --sub SUB | --sid SID)

FILE defaults to $JOTGATE_CONFIG, then config/gateway.yaml.`

export async function main (argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv
  if (command === undefined) {
    // A usage error: the text goes to stderr, so `jotgate | tool` never takes it for output.
    io.stderr(USAGE)
    return 2
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    io.stdout(USAGE)
    return 0
  }
  if (command === '--version') {
    io.stdout(packageVersion())
    return 0
  }
  const load = COMMANDS[command]
  if (load === undefined) {
    io.stderr(`error: unknown command ${JSON.stringify(command)}\n${USAGE}`)
    return 2
  }
  return (await load()).run(rest, io)
}

/**
 * The version in jotgate's package.json: the nearest one above this
 * module named jotgate (dist/cli/ in a checkout or an image; a test
 * build compiles src one level deeper).
 */
function packageVersion (): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dirname(dir) !== dir; dir = dirname(dir)) {
    let pkg: { name?: unknown, version?: unknown }
    try {
      pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as typeof pkg
    } catch {
      continue
    }
    if (pkg.name === 'jotgate' && typeof pkg.version === 'string') return pkg.version
  }
  return 'unknown'
}
