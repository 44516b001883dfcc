/**
 * Revocation latency under load: `POST /revocations` on the admin
 * listener(s), one call at a time, timed from its own process (so that the
 * load driver's busy event loop does not inflate the figures). After each
 * call returns, the revoked token is sent to every instance and must be
 * refused with JOTGATE_TOKEN_REVOKED (CONTRACT section 5: consistent once
 * the call returns).
 *
 * As a child: `node bench/revocation.js` receives a RevocationJob over IPC
 * and answers with its RevocationReport.
 */
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const SELF = fileURLToPath(import.meta.url)

/**
 * @typedef {object} RevocationJob
 * @property {string[]} adminUrls one per instance; call i goes to instance i mod n
 * @property {string[]} gatewayUrls one per instance
 * @property {{ token: string, jti: string, exp: number }[]} items
 * @property {number} intervalMs pause between calls
 *
 * @typedef {object} RevocationReport
 * @property {number} calls
 * @property {number} failed calls that did not answer 201
 * @property {number[]} latencies ms of each successful call
 * @property {number} refusedEverywhere revoked tokens refused by every instance right after the call returned
 * @property {number} leaked revoked tokens some instance still let through (or refused with another code)
 */

/** @param {RevocationJob} job @returns {Promise<RevocationReport>} */
async function runJob ({ adminUrls, gatewayUrls, items, intervalMs }) {
  /** @type {number[]} */
  const latencies = []
  let failed = 0
  let refusedEverywhere = 0
  let leaked = 0
  for (let i = 0; i < items.length; i++) {
    const { token, jti, exp } = /** @type {RevocationJob['items'][number]} */ (items[i])
    const t0 = performance.now()
    const res = await fetch(`${adminUrls[i % adminUrls.length]}/revocations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jti, exp })
    })
    await res.arrayBuffer()
    const ms = performance.now() - t0
    if (res.status !== 201) { failed++; continue }
    latencies.push(ms)
    let everywhere = true
    for (const url of gatewayUrls) {
      const check = await fetch(`${url}/`, { headers: { authorization: `Bearer ${token}` } })
      const body = /** @type {{ code?: string }} */ (await check.json().catch(() => ({})))
      if (check.status !== 401 || body.code !== 'JOTGATE_TOKEN_REVOKED') everywhere = false
    }
    if (everywhere) refusedEverywhere++
    else leaked++
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
  return { calls: items.length, failed, latencies, refusedEverywhere, leaked }
}

/**
 * Runs a job in a child process.
 * @param {RevocationJob} job
 * @returns {Promise<RevocationReport>}
 */
export function runRevocationJob (job) {
  const child = fork(SELF, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  return new Promise((resolve, reject) => {
    child.once('message', (/** @type {RevocationReport} */ report) => { resolve(report); child.disconnect() })
    child.once('exit', (code) => reject(new Error(`revocation client exited with ${code}`)))
    child.send(job)
  })
}

if (process.argv[1] === SELF) {
  process.once('message', (/** @type {RevocationJob} */ job) => {
    runJob(job).then((report) => process.send?.(report), (err) => {
      process.stderr.write(`${err?.stack ?? err}\n`)
      process.exit(1)
    })
  })
  process.on('disconnect', () => process.exit(0))
}
