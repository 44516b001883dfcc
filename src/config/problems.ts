/** One thing wrong with a config: `<key path>: <what is wrong>`. */
export interface ConfigProblem {
  path: string
  message: string
}

/** A config that cannot be used; `problems` holds every reason found. */
export class ConfigError extends Error {
  readonly code = 'JOTGATE_CONFIG_INVALID'
  constructor (readonly problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'))
    this.name = 'ConfigError'
  }
}

export function formatProblem (p: ConfigProblem): string {
  return p.path === '' ? p.message : `${p.path}: ${p.message}`
}

/** A risky but legal setting, logged at start with its stable code. */
export interface ConfigWarning {
  code: string
  path: string
  message: string
}

/** `/routes/2/upstream` -> `routes[2].upstream`. */
export function pointerToPath (pointer: string): string {
  let out = ''
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (/^[0-9]+$/.test(part)) out += `[${part}]`
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(part)) out += out === '' ? part : `.${part}`
    else out += `[${JSON.stringify(part)}]`
  }
  return out
}
