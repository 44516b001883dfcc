/**
 * runGateway holds one process.nextTick object for the life of the
 * process (keepTickObjectShape in src/server.ts). Checked by what V8 does,
 * not by time: a gateway is started in a child process, two full
 * collections run while no tick object is alive, then it serves requests,
 * and V8 prints the state of nextTick's inline caches (%DebugPrint).
 * Without the held object the stores of nextTick's object literal come out
 * megamorphic; with it they stay monomorphic. The child without it is the
 * control: it shows that this check sees the state it is looking for.
 *
 * In production the collections are the memory reducer's, about 8-25 s
 * after an idle start; they keep no map that has no live object. V8 keeps
 * such a map for two ordinary full collections (--retain-maps-for-n-gc=2),
 * so two forced ones (gc() under --expose-gc) free it the same way, at
 * once and whatever else the machine is doing. Waiting for the reducer
 * itself took 25-60 s and, under a busy test run, sometimes never came.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { baseConfig } from '../helpers/gateway.js'
import { keyDir } from '../helpers/zoo.js'
import { ROOT } from '../helpers/root.js'

// The built modules on plain node (npm test builds first): under tsx's
// loader the code V8 runs is not the code a deployed gateway runs.
const dist = (path: string) => JSON.stringify(pathToFileURL(join(ROOT, 'dist', path)).href)

const script = `
  const { createServer } = await import('node:http')
  const { PerformanceObserver, constants } = await import('node:perf_hooks')
  const { loadConfigObject } = await import(${dist('config/load.js')})
  const { buildGateway } = await import(${dist('app.js')})
  const { createLogger } = await import(${dist('log.js')})
  const { keepTickObjectShape } = await import(${dist('server.js')})
  const [mode, raw, keyDir] = process.argv.slice(1)
  if (mode === 'kept') keepTickObjectShape()
  let majorGcs = 0
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majorGcs++
  }).observe({ entryTypes: ['gc'] })
  const upstream = createServer((req, res) => { req.resume(); res.end('ok') })
  await new Promise((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  const config = JSON.parse(raw)
  config.routes = [{ path: '/', upstream: 'http://127.0.0.1:' + upstream.address().port, auth: 'none' }]
  const gateway = await buildGateway(loadConfigObject(config, keyDir), { logger: createLogger({ level: 'warn' }) })
  const url = await gateway.app.listen({ host: '127.0.0.1', port: 0 })
  // Each on a turn of its own, after start-up's ticks have run out.
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
  const before = majorGcs
  for (let i = 0; i < 2; i++) { await sleep(50); globalThis.gc() }
  await sleep(50)
  const forced = majorGcs - before
  for (let i = 0; i < 50; i++) await Promise.all(Array.from({ length: 10 }, () => fetch(url + '/x').then((r) => r.text())))
  console.log('forced-gcs ' + forced)
  const print = new Function('f', '%DebugPrint(f)')
  print(process.nextTick)
  await gateway.close()
  upstream.close()
`

/**
 * The test runner's environment without what it injects into every node
 * process (NODE_OPTIONS loading its own hooks): the child is plain node
 * running the built code, as a deployed gateway is.
 */
function childEnv (): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (k !== 'NODE_OPTIONS' && !k.startsWith('_TAPJS')) env[k] = v
  // tap's process tracker wraps child_process and puts its hook back into
  // every child's NODE_OPTIONS; under `npm run coverage` that hook turns on
  // V8's coverage, which changes the feedback the child reads (its held
  // object went megamorphic). This keeps the coverage off in the child.
  env._TAPJS_PROCESSINFO_COVERAGE_ = '0'
  return env
}

interface Seen { forcedGcs: number, literalStores: number, megamorphic: number }

function run (mode: 'kept' | 'control', dir: string): Promise<Seen> {
  const config = JSON.stringify(baseConfig('tick-shape', { store: { type: 'memory' } }))
  // V8 prints with C's stdio; on a pipe that node has made non-blocking its
  // writes can be dropped, so the child writes to a file.
  const file = join(dir, `${mode}.out`)
  const out = openSync(file, 'w')
  const child = spawn(process.execPath, ['--allow-natives-syntax', '--expose-gc', '--input-type=module', '-e', script, mode, config, keyDir],
    { stdio: ['ignore', out, 'pipe'], env: childEnv() })
  closeSync(out)
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => {
      if (code !== 0) { reject(new Error(`child (${mode}) exited with ${code}: ${stderr}`)); return }
      const stdout = readFileSync(file, 'utf8')
      const stores = stdout.split('\n').filter((l) => l.includes('DefineKeyedOwnPropertyInLiteral'))
      resolve({
        forcedGcs: Number(/^forced-gcs (\d+)$/m.exec(stdout)?.[1] ?? -1),
        literalStores: stores.length,
        megamorphic: stores.filter((l) => l.includes('MEGAMORPHIC')).length
      })
    })
  })
}

t.test('after two full collections, nextTick stays monomorphic only with the held object', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'jotgate-tick-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const [kept, control] = await Promise.all([run('kept', dir), run('control', dir)])
  t.ok(kept.forcedGcs >= 2, `the held child ran ${kept.forcedGcs} full collections`)
  t.ok(control.forcedGcs >= 2, `the control ran ${control.forcedGcs} full collections`)
  t.equal(kept.literalStores, 4, 'V8 printed the four stores of the literal')
  t.equal(kept.megamorphic, 0, 'with the held object none is megamorphic')
  t.ok(control.megamorphic > 0, `without it ${control.megamorphic} of ${control.literalStores} are megamorphic`)
})
