/**
 * Loading a config: read -> substitute `${VAR}` -> parse -> defaults ->
 * validate (every error, with its key path) -> cross-field checks ->
 * resolve relative paths -> deep-freeze.
 */
import { readFileSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { Value } from '@sinclair/typebox/value'
import { parse as parseYaml } from 'yaml'
import { ConfigSchema, type GatewayConfig } from './schema.js'
import { ConfigError, pointerToPath, type ConfigProblem, type ConfigWarning } from './problems.js'
import { checkConfig } from './checks.js'

export interface LoadedConfig {
  config: GatewayConfig
  warnings: ConfigWarning[]
  /** Absolute path of the file it came from ('' when built from an object). */
  file: string
}

/** Default config location when neither --config nor $JOTGATE_CONFIG is given. */
export const DEFAULT_CONFIG_FILE = 'config/gateway.yaml'

export function resolveConfigFile (flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(flag ?? env.JOTGATE_CONFIG ?? DEFAULT_CONFIG_FILE)
}

/**
 * Replaces `${VAR}` and `${VAR:-default}` from `env`. `$${` stays a literal
 * `${`. An unset variable without a default is a problem naming it.
 */
export function substituteEnv (text: string, env: NodeJS.ProcessEnv, problems: ConfigProblem[]): string {
  return text.replace(/\$?\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (whole, name: string, fallback: string | undefined) => {
    if (whole.startsWith('$$')) return whole.slice(1)
    const value = env[name]
    if (value !== undefined && (value !== '' || fallback === undefined)) return value
    if (fallback !== undefined) return fallback
    problems.push({ path: `\${${name}}`, message: 'environment variable is not set and has no default (use ${' + name + ':-default})' })
    return ''
  })
}

/** Reads and validates a config file; throws ConfigError listing every problem. */
export function loadConfigFile (file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError([{ path: '', message: `cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }])
  }
  const problems: ConfigProblem[] = []
  const substituted = substituteEnv(text, env, problems)
  let raw: unknown
  try {
    raw = parseYaml(substituted, { prettyErrors: true, uniqueKeys: true })
  } catch (err) {
    problems.push({ path: '', message: `not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}` })
  }
  if (problems.length > 0) throw new ConfigError(problems)
  return loadConfigObject(raw ?? {}, dirname(resolve(file)), resolve(file))
}

/** Validates an already parsed config; relative paths resolve against `baseDir`. */
export function loadConfigObject (raw: unknown, baseDir: string, file = ''): LoadedConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError([{ path: '', message: 'the config must be a mapping (YAML object)' }])
  }
  const value = Value.Default(ConfigSchema, structuredClone(raw))
  const problems = schemaProblems(value)
  if (problems.length > 0) throw new ConfigError(problems)
  const config = value as GatewayConfig
  resolvePaths(config, baseDir)
  const warnings: ConfigWarning[] = []
  problems.push(...checkConfig(config, warnings))
  if (problems.length > 0) throw new ConfigError(problems)
  return { config: deepFreeze(config), warnings, file }
}

function schemaProblems (value: unknown): ConfigProblem[] {
  const seen = new Set<string>()
  const out: ConfigProblem[] = []
  for (const error of Value.Errors(ConfigSchema, value)) {
    let path = pointerToPath(error.path)
    let message = (error.schema as { errorMessage?: string }).errorMessage ?? error.message.toLowerCase()
    if (error.message === 'Unexpected property') message = 'unknown key'
    if (/^expected required property/i.test(error.message)) message = 'is required'
    if (path === '') path = '(root)'
    const key = path
    if (seen.has(key)) continue
    seen.add(key)
    out.push({ path, message })
  }
  return out
}

function resolvePaths (config: GatewayConfig, baseDir: string): void {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p))
  for (const key of config.tokens.keys) {
    if (key.privateKeyFile !== undefined) key.privateKeyFile = abs(key.privateKeyFile)
    if (key.publicKeyFile !== undefined) key.publicKeyFile = abs(key.publicKeyFile)
    if (key.secretFile !== undefined) key.secretFile = abs(key.secretFile)
  }
  if (config.auth?.users !== undefined) config.auth.users.file = abs(config.auth.users.file)
}

function deepFreeze<T> (value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const child of Object.values(value as Record<string, unknown>)) deepFreeze(child)
  }
  return value
}
