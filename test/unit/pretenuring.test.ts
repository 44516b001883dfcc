/**
 * runGateway turns V8's allocation-site pretenuring off (see
 * disablePretenuring in src/server.ts) unless the operator named the flag.
 * The effect is checked in a child process by what V8 does, not by time:
 * with pretenuring, objects from a site that keeps surviving are allocated
 * in the old generation and scavenges become rare; without it every one of
 * them is copied out of the young generation, scavenge after scavenge.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { disablePretenuring } from '../../src/server.js'
import { ROOT } from '../helpers/root.js'

// The child runs the built module (npm test builds first) on plain node:
// under tsx's loader V8 often does not pretenure even this site, which
// would leave nothing to compare.
const SERVER = pathToFileURL(join(ROOT, 'dist', 'server.js')).href

t.test('an operator who names the flag keeps their choice', async (t) => {
  t.equal(disablePretenuring({ NODE_OPTIONS: '--max-old-space-size=512 --allocation-site-pretenuring' }, []), false)
  t.equal(disablePretenuring({}, ['--no-allocation_site_pretenuring']), false, 'node flags, either spelling')
})

t.test('otherwise pretenuring is off for the process: long-lived objects are scavenged, not pretenured', async (t) => {
  // Four million small objects kept alive from one allocation site.
  const script = `
    const { PerformanceObserver, constants } = await import('node:perf_hooks')
    let minor = 0
    new PerformanceObserver((l) => { for (const e of l.getEntries()) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MINOR) minor++ }).observe({ entryTypes: ['gc'] })
    const { disablePretenuring } = await import(${JSON.stringify(SERVER)})
    if (process.argv[1] === 'off') disablePretenuring({}, [])
    const keep = []
    const make = (i) => ({ a: i, b: [i] })
    for (let i = 0; i < 4e6; i++) keep.push(make(i))
    setTimeout(() => console.log(minor), 50)
  `
  const scavenges = (mode: string) => Number(execFileSync(process.execPath, ['--input-type=module', '-e', script, mode], { encoding: 'utf8' }).trim())
  const on = scavenges('default')
  const off = scavenges('off')
  t.ok(on > 0 && off > 2 * on, `scavenges: ${on} with V8's default, ${off} after disablePretenuring()`)
})
