/**
 * Spawning the BUILT CLI (dist/, made by `npm run build`, which the
 * `pretest` script runs) and reading its JSON log lines from stdout.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from '../helpers/root.js'

export { ROOT }
export const CLI = join(ROOT, 'dist', 'cli', 'main.js')

/** Throws a readable error when dist/ is missing (run `npm run build`). */
export function assertBuilt (): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does it in pretest)`)
}

export interface Exit { code: number | null, signal: NodeJS.Signals | null }

export interface CliProcess {
  proc: ChildProcess
  /** Every complete stdout line, in order. */
  lines: string[]
  stderr: () => string
  exited: Promise<Exit>
  /** Resolves with the first JSON log line (already written or to come) matching `pred`. */
  waitFor: (pred: (entry: Record<string, unknown>) => boolean, timeoutMs: number, what: string) => Promise<Record<string, unknown>>
  signal: (sig: NodeJS.Signals) => void
}

export function spawnCli (command: string, args: string[], options: { cwd?: string, env?: NodeJS.ProcessEnv } = {}): CliProcess {
  // The config's log level decides (LOG_LEVEL in the test runner's env would override it).
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env }
  if (options.env?.LOG_LEVEL === undefined) delete env.LOG_LEVEL
  const proc = spawn(command, args, {
    cwd: options.cwd ?? ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  // A test that ends early must not leave a gateway behind: on exit, and on
  // the SIGALRM with which tap times a test file out (no teardown runs then).
  const reap = () => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL') }
  process.once('exit', reap)
  process.once('SIGALRM', reap)
  proc.once('close', () => {
    process.off('exit', reap)
    process.off('SIGALRM', reap)
  })
  const lines: string[] = []
  const waiters = new Set<() => void>()
  let partial = ''
  let err = ''
  proc.stdout!.setEncoding('utf8')
  proc.stdout!.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n')
    partial = parts.pop()!
    lines.push(...parts)
    for (const w of waiters) w()
  })
  proc.stderr!.setEncoding('utf8')
  proc.stderr!.on('data', (chunk: string) => { err += chunk })
  // 'close', not 'exit': it comes after stdout is drained, so no line is lost.
  const exited = new Promise<Exit>((resolve) => {
    proc.once('close', (code, signal) => {
      if (partial !== '') lines.push(partial)
      partial = ''
      resolve({ code, signal })
      for (const w of waiters) w()
    })
  })
  let done = false
  void exited.then(() => { done = true })

  const find = (pred: (entry: Record<string, unknown>) => boolean): Record<string, unknown> | undefined => {
    for (const line of lines) {
      const entry = parseLine(line)
      if (entry !== undefined && pred(entry)) return entry
    }
    return undefined
  }

  return {
    proc,
    lines,
    stderr: () => err,
    exited,
    signal: (sig) => { if (proc.exitCode === null && proc.signalCode === null) proc.kill(sig) },
    waitFor: (pred, timeoutMs, what) => new Promise((resolve, reject) => {
      const check = () => {
        const found = find(pred)
        if (found !== undefined) { finish(); resolve(found); return }
        if (done) { finish(); reject(new Error(`process exited before ${what}; stdout:\n${lines.join('\n')}\nstderr:\n${err}`)) }
      }
      const timer = setTimeout(() => { finish(); reject(new Error(`no ${what} within ${timeoutMs} ms; stdout:\n${lines.join('\n')}\nstderr:\n${err}`)) }, timeoutMs)
      const finish = () => { clearTimeout(timer); waiters.delete(check) }
      waiters.add(check)
      check()
    })
  }
}

export function parseLine (line: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line)
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? value as Record<string, unknown> : undefined
  } catch {
    return undefined
  }
}

/** The `jotgate listening` line: the ports actually bound. */
export async function listening (cli: CliProcess, timeoutMs = 20_000): Promise<{ port: number, adminPort: number | undefined }> {
  const line = await cli.waitFor((e) => e.msg === 'jotgate listening', timeoutMs, 'listening log line')
  return { port: line.port as number, adminPort: line.adminPort as number | undefined }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `fn` every `everyMs` until it returns true; resolves with the elapsed ms, rejects after `timeoutMs`. */
export async function poll (fn: () => Promise<boolean>, timeoutMs: number, what: string, everyMs = 25): Promise<number> {
  const start = Date.now()
  for (;;) {
    if (await fn().catch(() => false)) return Date.now() - start
    if (Date.now() - start > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await sleep(everyMs)
  }
}
