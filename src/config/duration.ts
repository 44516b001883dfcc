const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/**
 * Milliseconds of a config duration: `250ms`, `30s`, `10m`, `24h`, `7d`, or
 * an integer number of seconds. The schema has already checked the form.
 */
export function toMs (value: string | number): number {
  if (typeof value === 'number') return value * 1000
  const match = /^([0-9]+)(ms|s|m|h|d)$/.exec(value)
  if (match === null) throw new TypeError(`not a duration: ${value}`)
  return Number(match[1]) * UNIT_MS[match[2]!]!
}

/** Whole seconds of a config duration (rounded up). */
export function toSeconds (value: string | number): number {
  return Math.ceil(toMs(value) / 1000)
}
