/**
 * Shared by the config tests: temp config files and problem lines in the
 * `<key path>: <what is wrong>` form `jotgate check` prints.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, formatProblem } from '../../../src/config/problems.js'

export interface Teardown { teardown: (fn: () => void) => void }

/** A temp dir removed when the test ends. */
export function tempDir (t: Teardown): string {
  const dir = mkdtempSync(join(tmpdir(), 'jotgate-config-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Writes `text` to `dir/name` and returns the path. */
export function writeFile (dir: string, name: string, text: string | Buffer): string {
  const file = join(dir, name)
  writeFileSync(file, text)
  return file
}

/** The problem lines of a ConfigError thrown by `fn` (fails loudly when nothing is thrown). */
export function problemLines (fn: () => unknown): string[] {
  try {
    fn()
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map(formatProblem)
    throw err
  }
  throw new Error('expected a ConfigError, but the config loaded')
}

/** A minimal valid route, merged with `extra`. */
export const route = (extra: Record<string, unknown> = {}): Record<string, unknown> =>
  ({ path: '/', upstream: 'http://127.0.0.1:3000', auth: 'none', ...extra })
