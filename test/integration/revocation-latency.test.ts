/**
 * Issue 9: how long a revocation call (admin POST /revocations) takes with
 * 1, 2 and 4 gateway instances sharing one store, under load (a background
 * loop of proxied requests on every instance), with the default direct
 * lookup and with `store.replica: true`. Prints p50/p99 as a table.
 *
 * Only correctness is asserted (201, and refused by every instance once the
 * call returned); timings depend on the machine and are printed, never
 * asserted. Instances run in this one process (startGateway), against a
 * private redis-server on a loopback port.
 */
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { startUpstream } from '../helpers/upstream.js'
import { replicaTrusted, startGateway, type TestGateway } from '../helpers/gateway.js'
import { startRedisServer, uniquePrefix } from '../helpers/redis.js'
import { mint, claims } from '../helpers/zoo.js'

/**
 * 100 calls for figures worth quoting (JOTGATE_LATENCY_CALLS=100); 12 keep
 * the suite within its time budget (the suite is bound by CPU, and the
 * background load of this test took 18 s of it at 25 calls).
 */
const CALLS = Number(process.env.JOTGATE_LATENCY_CALLS ?? 12)
/** Concurrent request loops per instance. */
const LOAD_LOOPS = 2
/** JOTGATE_LATENCY_IDLE=1 adds the same runs without load, as a baseline (not by default: time). */
const LOADS = process.env.JOTGATE_LATENCY_IDLE === '1' ? [0, LOAD_LOOPS] : [LOAD_LOOPS]

interface Row { mode: string, instances: number, loops: number, p50: number, p99: number, max: number, baseP50: number, baseP99: number, loadRps: number, loadOk: number, loadOther: number }

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!

t.test('revocation latency with 1, 2 and 4 instances, direct lookups and replica', async (t) => {
  const redis = await startRedisServer()
  const up = await startUpstream()
  t.teardown(async () => { await up.close(); await redis.stop() })
  const rows: Row[] = []

  for (const loops of LOADS) {
  for (const replica of [false, true]) {
    for (const instances of [1, 2, 4]) {
      const mode = replica ? 'replica' : 'direct'
      await t.test(`${mode}, ${instances} instance(s), ${loops} load loops each`, async (t) => {
        const store = { type: 'redis', url: redis.url, keyPrefix: uniquePrefix('latency'), replica, onError: 'deny' }
        const config = { store, routes: [{ path: '/', upstream: up.url }] }
        const gws: TestGateway[] = []
        t.teardown(async () => { await Promise.all(gws.map((g) => g.close())) })
        for (let i = 0; i < instances; i++) gws.push(await startGateway({ name: 'latency', config, admin: true }))
        if (replica) {
          for (const gw of gws) t.ok(await replicaTrusted(gw), 'replica trusted')
        }

        // Background load: LOAD_LOOPS request loops on every instance, a valid token each.
        let loading = true
        let loadOk = 0
        let loadOther = 0
        const loadToken = mint()
        const loopsDone = gws.flatMap((gw) => Array.from({ length: loops }, async () => {
          while (loading) {
            try {
              const r = await fetch(`${gw.url}/load`, { headers: { authorization: `Bearer ${loadToken}` } })
              await r.arrayBuffer()
              if (r.status === 200) loadOk++
              else loadOther++
            } catch {
              loadOther++
            }
          }
        }))
        await sleep(300)
        const loadStart = performance.now()
        const okBefore = loadOk

        const latencies: number[] = []
        // The same admin listener answering GET /healthz (no store): what the
        // process and the HTTP round trip cost alone, under the same load.
        const baseline: number[] = []
        let created = 0
        let refusedEverywhere = 0
        for (let i = 0; i < CALLS; i++) {
          const payload = claims()
          const token = mint({ payload })
          const healthStarted = performance.now()
          await (await fetch(`${gws[i % instances]!.adminUrl!}/healthz`)).arrayBuffer()
          baseline.push(performance.now() - healthStarted)
          const started = performance.now()
          const res = await fetch(`${gws[i % instances]!.adminUrl!}/revocations`, {
            method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jti: payload.jti, exp: payload.exp })
          })
          await res.arrayBuffer()
          latencies.push(performance.now() - started)
          if (res.status === 201) created++
          // Correctness, outside the timed part: once the call returned, every instance refuses the token.
          const answers = await Promise.all(gws.map(async (gw) => {
            const r = await fetch(`${gw.url}/x`, { headers: { authorization: `Bearer ${token}` } })
            return ((await r.json()) as { code?: string }).code
          }))
          if (answers.every((c) => c === 'JOTGATE_TOKEN_REVOKED')) refusedEverywhere++
        }
        const loadSeconds = (performance.now() - loadStart) / 1000
        const loadRps = (loadOk - okBefore) / loadSeconds
        loading = false
        await Promise.all(loopsDone)

        t.equal(created, CALLS, `${CALLS} revocation calls answered 201`)
        t.equal(refusedEverywhere, CALLS, 'each revoked token refused by every instance as soon as the call returned')
        t.equal(loadOther, 0, `background load: ${loadOk} requests, all 200`)
        latencies.sort((x, y) => x - y)
        baseline.sort((x, y) => x - y)
        rows.push({
          mode, instances, loops, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), max: latencies.at(-1)!,
          baseP50: quantile(baseline, 0.5), baseP99: quantile(baseline, 0.99), loadRps, loadOk, loadOther
        })
      })
    }
  }
  }

  const fmt = (n: number) => n.toFixed(1).padStart(7)
  t.comment(`revocation call latency, ${CALLS} calls each (all instances in one process, one redis-server)`)
  t.comment('| store mode | instances | load loops / instance | p50 ms  | p99 ms  | max ms  | /healthz p50 | /healthz p99 | load req/s (all instances) |')
  t.comment('|------------|-----------|-----------------------|---------|---------|---------|--------------|--------------|----------------------------|')
  for (const r of rows) {
    t.comment(`| ${r.mode.padEnd(10)} | ${String(r.instances).padStart(9)} | ${String(r.loops).padStart(21)} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.max)} | ` +
      `${r.baseP50.toFixed(1).padStart(12)} | ${r.baseP99.toFixed(1).padStart(12)} | ${r.loadRps.toFixed(0).padStart(26)} |`)
  }
})
