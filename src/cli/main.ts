#!/usr/bin/env node
/** The `jotgate` executable: wires the process to the CLI. */
import { main } from './index.js'
import type { CliIo } from './io.js'

const io: CliIo = {
  stdout: (line) => { process.stdout.write(`${line}\n`) },
  stderr: (line) => { process.stderr.write(`${line}\n`) },
  stdin: process.stdin,
  env: process.env
}

main(process.argv.slice(2), io).then((code) => {
  process.exitCode = code
}, (err: unknown) => {
  process.stderr.write(`error: ${(err as Error).message}\n`)
  process.exitCode = 1
})
