/** `jotgate keys <subcommand>`: only `generate` for now. */
import type { CliIo } from './io.js'

export async function run (args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args
  if (sub === 'generate') return (await import('./keys-generate.js')).run(rest, io)
  io.stderr('usage: jotgate keys generate --alg ALG [--kid K] --out DIR')
  return 2
}
