/**
 * The project's root directory: the nearest one above this file that holds
 * package.json. The tests run compiled, from dist-test/test/ (npm test),
 * or from test/ under tsx: a path relative to the file would differ.
 */
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

function findRoot (from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`)
  }
}

export const ROOT = findRoot(dirname(fileURLToPath(import.meta.url)))
