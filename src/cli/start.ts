/**
 * `jotgate start [--config FILE]`: runs the gateway until SIGTERM/SIGINT.
 */
import type { CliIo } from './io.js'
import type { RunningGateway } from '../server.js'

export async function run (args: string[], io: CliIo): Promise<number> {
  // Signals are handled from the first moment, not only once listening: the
  // default action of a SIGTERM or SIGHUP that arrives while the modules load
  // (a second or more on a busy host) would kill the process. They are
  // remembered and acted on as soon as the gateway runs.
  let running: RunningGateway | undefined
  let stopSignal: NodeJS.Signals | undefined
  let reloadPending = false
  let stop: ((signal: NodeJS.Signals) => void) | undefined
  const onStop = (signal: NodeJS.Signals) => {
    if (stopSignal !== undefined) {
      // A second SIGTERM/SIGINT (Ctrl-C twice): stop draining, die by the signal.
      unlisten()
      process.kill(process.pid, signal)
      return
    }
    stopSignal = signal
    stop?.(signal)
  }
  const onHup = () => {
    if (running === undefined) reloadPending = true
    else if (stopSignal === undefined) void running.reload()
  }
  const unlisten = () => {
    process.off('SIGTERM', onStop)
    process.off('SIGINT', onStop)
    process.off('SIGHUP', onHup)
  }
  process.on('SIGTERM', onStop)
  process.on('SIGINT', onStop)
  process.on('SIGHUP', onHup)

  // Loaded only now (config schema, Fastify, ioredis: most of the start-up time).
  const { loadForCli, parseFlags } = await import('./args.js')
  const flags = parseFlags(args, { config: { type: 'string', short: 'c' } }, io)
  if (flags === undefined) { unlisten(); return 2 }
  const loaded = loadForCli(flags.values.config, io)
  if (loaded === undefined) { unlisten(); return 1 }
  // A stop before anything listens: nothing to drain.
  if (stopSignal !== undefined) { unlisten(); return 0 }
  const { createLogger } = await import('../log.js')
  const log = createLogger({ level: loaded.config.log.level })
  const cluster = (await import('node:cluster')).default
  if (loaded.config.server.workers > 1 && cluster.isPrimary) {
    const { runPrimary } = await import('./workers.js')
    const primary = runPrimary(loaded.config.server.workers, log)
    stop = (signal) => primary.signal(signal)
    if (stopSignal !== undefined) primary.signal(stopSignal)
    process.off('SIGHUP', onHup)
    process.on('SIGHUP', () => primary.signal('SIGHUP'))
    const code = await primary.done
    unlisten()
    process.removeAllListeners('SIGHUP')
    return code
  }
  try {
    const { runGateway } = await import('../server.js')
    running = await runGateway(loaded, log, io.env)
  } catch (err) {
    unlisten()
    // stdout carries only JSON log lines, so the reason goes there as one.
    log.fatal({ err }, 'jotgate could not start')
    return 1
  }
  const gateway = running
  const code = await new Promise<number>((resolve) => {
    stop = (signal) => {
      gateway.shutdown(signal).then(() => resolve(0), (err: unknown) => {
        log.error({ err }, 'error during shutdown')
        resolve(1)
      }).finally(unlisten)
    }
    if (stopSignal !== undefined) stop(stopSignal)
    // The file may have changed after it was read above.
    else if (reloadPending) void gateway.reload()
  })
  // A cluster worker's IPC channel would keep it alive after draining.
  if (cluster.isWorker) process.disconnect()
  return code
}
