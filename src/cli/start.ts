/**
 * `jotgate start [--config FILE]`: runs the gateway until SIGTERM/SIGINT.
 */
import type { CliIo } from './io.js'
import { loadForCli, parseFlags } from './args.js'
import { createLogger } from '../log.js'
import { runGateway, type RunningGateway } from '../server.js'

export async function run (args: string[], io: CliIo): Promise<number> {
  const flags = parseFlags(args, { config: { type: 'string', short: 'c' } }, io)
  if (flags === undefined) return 2
  const loaded = loadForCli(flags.values.config, io)
  if (loaded === undefined) return 1
  const log = createLogger({ level: loaded.config.log.level })
  let running: RunningGateway
  try {
    running = await runGateway(loaded, log, io.env)
  } catch (err) {
    // stdout carries only JSON log lines, so the reason goes there as one.
    log.fatal({ err }, 'jotgate could not start')
    return 1
  }
  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      running.shutdown(signal).then(() => resolve(0), (err: unknown) => {
        log.error({ err }, 'error during shutdown')
        resolve(1)
      })
    }
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
    process.on('SIGHUP', () => { void running.reload() })
  })
}
