import { parseArgs, type ParseArgsConfig } from 'node:util'
import type { CliIo } from './io.js'
import { loadConfigFile, resolveConfigFile, type LoadedConfig } from '../config/load.js'
import { ConfigError, formatProblem } from '../config/problems.js'

type Options = NonNullable<ParseArgsConfig['options']>

/** Strict flag parsing; a usage error prints one line and yields undefined (exit 2). */
export function parseFlags<O extends Options> (args: string[], options: O, io: CliIo, positionals = false) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: positionals })
  } catch (err) {
    io.stderr(`error: ${(err as Error).message}`)
    return undefined
  }
}

/** Loads the config named by --config / $JOTGATE_CONFIG, printing every problem on failure. */
export function loadForCli (flag: string | undefined, io: CliIo): LoadedConfig | undefined {
  try {
    return loadConfigFile(resolveConfigFile(flag, io.env), io.env)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    for (const p of err.problems) io.stderr(formatProblem(p))
    return undefined
  }
}
