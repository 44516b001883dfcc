/**
 * What a command may touch of the outside world. Commands take it instead of
 * `process` so tests can run them in-process and read what they printed.
 */
export interface CliIo {
  /** Writes one line (the newline is added by the implementation). */
  stdout: (line: string) => void
  /** Writes one line (the newline is added by the implementation). */
  stderr: (line: string) => void
  stdin?: NodeJS.ReadableStream
  env: NodeJS.ProcessEnv
}
