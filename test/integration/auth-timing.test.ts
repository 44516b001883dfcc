/**
 * Login timing (issue 3): an unknown username costs the same as a known one
 * with a wrong password, so timing does not tell which usernames exist.
 *
 * Samples are taken in adjacent pairs (wrong password, unknown user, in
 * alternating order) so that load drifting on a shared machine hits both;
 * the assertion is on the median of the per-pair ratios, with a tolerance.
 * The leak this guards against is a multiple (a verification skipped, or
 * one against a hash of another algorithm or cost), far beyond it.
 */
import t, { type Test } from 'tap'
import { performance } from 'node:perf_hooks'
import { authGateway, usersFile, call, median, type UserSpec } from './auth-kit.js'

/** The median unknown/wrong ratio must lie in [1 / (1 + TOLERANCE), 1 + TOLERANCE]. */
const TOLERANCE = 0.5

async function compare (t: Test, label: string, users: UserSpec[], known: string, samples: number): Promise<void> {
  const file = await usersFile(users)
  const gw = await authGateway({ name: `auth-timing-${label}`, auth: { users: { file }, rateLimit: { max: 1000 } } })
  t.teardown(() => gw.close())
  let refused = 0
  const time = async (username: string): Promise<number> => {
    const started = performance.now()
    const res = await call(gw.url, '/auth/login', { username, password: 'definitely-wrong' })
    const ms = performance.now() - started
    if (res.body?.code === 'JOTGATE_LOGIN_FAILED') refused++
    return ms
  }
  // Warm-up: connections, lazy initialisation.
  await time(known)
  await time('warm-up-nobody')
  const wrong: number[] = []
  const unknown: number[] = []
  for (let i = 0; i < samples; i++) {
    if (i % 2 === 0) { wrong.push(await time(known)); unknown.push(await time(`nobody-${i}`)) } else { unknown.push(await time(`nobody-${i}`)); wrong.push(await time(known)) }
  }
  t.equal(refused, 2 + 2 * samples, 'every attempt: 401 JOTGATE_LOGIN_FAILED')
  const ratio = median(unknown.map((u, i) => u / wrong[i]!))
  const fmt = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(' ')
  t.comment(`${label}: wrong password median ${median(wrong).toFixed(1)} ms [${fmt(wrong)}]; unknown user median ${median(unknown).toFixed(1)} ms [${fmt(unknown)}]; median paired ratio unknown/wrong ${ratio.toFixed(3)}`)
  t.ok(ratio <= 1 + TOLERANCE && ratio >= 1 / (1 + TOLERANCE), `${label}: unknown/wrong = ${ratio.toFixed(3)}, within ±${TOLERANCE * 100}%`)
}

t.test('scrypt users file (ln=14; hash-password makes ln=17, same code path)', async (t) => {
  await compare(t, 'scrypt', [{ username: 'sam', password: 'sam-pw', cost: 14 }], 'sam', 8)
})

t.test('bcrypt users file (cost 10): an unknown user is not priced like a scrypt hash', async (t) => {
  await compare(t, 'bcrypt', [{ username: 'bea', password: 'bea-pw', hash: '2b', cost: 10 }, { username: 'ben', password: 'ben-pw', hash: '2y', cost: 10 }], 'bea', 8)
})
