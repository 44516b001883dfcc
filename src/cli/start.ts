/**
 * `jotgate start [--config FILE]`: runs the gateway until SIGTERM/SIGINT.
 */
import type { CliIo } from './io.js'
import { loadForCli, parseFlags } from './args.js'
import { createLogger } from '../log.js'
import { runGateway } from '../server.js'

export async function run (args: string[], io: CliIo): Promise<number> {
  const flags = parseFlags(args, { config: { type: 'string', short: 'c' } }, io)
  if (flags === undefined) return 2
  const loaded = loadForCli(flags.values.config, io)
  if (loaded === undefined) return 1
  const log = createLogger({ level: loaded.config.log.level })
  const running = await runGateway(loaded, log, io.env)
  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      running.shutdown(signal).then(() => resolve(0), (err: unknown) => {
        log.error({ err }, 'error during shutdown')
        resolve(1)
      })
    }
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
    process.on('SIGHUP', () => { running.reload() })
  })
}
