/**
 * `server.workers > 1`: the primary process forks that many workers (each a
 * whole gateway on the same ports, node:cluster balancing connections) and
 * only relays signals: SIGTERM/SIGINT drain every worker, SIGHUP reloads
 * each. A worker that dies unexpectedly is replaced.
 */
import cluster, { type Worker } from 'node:cluster'
import type { Logger } from 'pino'

export interface Primary {
  /** Relays a signal to every worker. */
  signal: (signal: NodeJS.Signals) => void
  /** Resolves with 0 once every worker exited after a stop, 1 if one failed. */
  done: Promise<number>
}

export function runPrimary (workers: number, log: Logger): Primary {
  let stopping = false
  let failed = false
  const live = new Set<Worker>()
  let resolve!: (code: number) => void
  const done = new Promise<number>((r) => { resolve = r })

  const fork = () => {
    const worker = cluster.fork()
    live.add(worker)
    worker.on('exit', (code, signal) => {
      live.delete(worker)
      if (!stopping) {
        log.error({ worker: worker.id, code, signal }, 'worker died; starting another')
        fork()
        return
      }
      if (code !== 0) failed = true
      if (live.size === 0) resolve(failed ? 1 : 0)
    })
  }
  for (let i = 0; i < workers; i++) fork()
  log.info({ workers }, 'primary started workers')

  return {
    signal (signal) {
      if (signal !== 'SIGHUP') stopping = true
      for (const worker of live) worker.process.kill(signal)
    },
    done
  }
}
