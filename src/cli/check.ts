/**
 * `jotgate check [--config FILE]`: validates the config and the keys it
 * names. Exit 0 and `ok`; exit 1 and one `<key path>: <problem>` line each.
 */
import type { CliIo } from './io.js'
import { loadForCli, parseFlags } from './args.js'

export async function run (args: string[], io: CliIo): Promise<number> {
  const flags = parseFlags(args, { config: { type: 'string', short: 'c' } }, io)
  if (flags === undefined) return 2
  const loaded = loadForCli(flags.values.config, io)
  if (loaded === undefined) return 1
  for (const w of loaded.warnings) io.stderr(`warning: ${w.path}: ${w.message} (${w.code})`)
  io.stdout('ok')
  return 0
}
