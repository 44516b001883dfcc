/**
 * The demo's browser page in headless Chromium (Debian's, driven by
 * playwright-core; no browser download): log in with cookies, call a
 * protected route, open a WebSocket through jotgate, watch logout close
 * it, and see a cross-origin form POST refused by the Origin check even
 * though SameSite lets the cookie through (same site, other port).
 * Skipped where /usr/bin/chromium is not installed.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'

const CHROMIUM = '/usr/bin/chromium'
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

t.test('the demo page: login, API call, WebSocket, logout, CSRF', {
  skip: existsSync(CHROMIUM) ? false : `Chromium is not installed at ${CHROMIUM} (apt-get install chromium); browser test skipped`
}, async (t) => {
  const { chromium } = await import('playwright-core')
  const env: NodeJS.ProcessEnv = { ...process.env, JOTGATE_PORT: '0', JOTGATE_ADMIN_PORT: '0', LOG_LEVEL: 'info' }
  delete env.REDIS_URL
  const demo = spawn(process.execPath, ['dist/demo/main.js'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (demo.exitCode === null) demo.kill('SIGKILL') })
  let err = ''
  let out = ''
  demo.stderr.on('data', (c: Buffer) => { err += String(c) })
  demo.stdout.on('data', (c: Buffer) => { out += String(c) })
  // Generous: the demo hashes its users' passwords (scrypt) at start, on a loaded CI box too.
  const deadline = Date.now() + 30000
  while (!/Stop with Ctrl-C/.test(err) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  const base = /gateway on (http:\/\/127\.0\.0\.1:\d+)/.exec(err)?.[1]
  if (base === undefined) throw new Error(`the demo did not start: ${err}`)
  t.match(err, new RegExp(`${base}/public/app`), 'the banner prints the page URL')

  // A page on another origin of the same site (127.0.0.1, another port):
  // SameSite=Strict cookies go along, so only the Origin check stands.
  const foreign = createServer((_req, res) => {
    res.setHeader('content-type', 'text/html')
    res.end(`<form id="f" method="POST" action="${base}/api/orders" enctype="text/plain"><input name="amount" value="100"></form><script>document.getElementById('f').submit()</script>`)
  })
  await new Promise<void>((resolve) => foreign.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { foreign.close() })

  const profile = mkdtempSync(join(tmpdir(), 'jotgate-chromium-'))
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 30000 })
  t.teardown(async () => { await context.close(); rmSync(profile, { recursive: true, force: true }) })
  const page = context.pages()[0] ?? await context.newPage()
  page.setDefaultTimeout(15000)
  const text = async (selector: string) => (await page.textContent(selector)) ?? ''
  // Expressions run in the page (this file is type-checked without the DOM library).
  const waitText = (selector: string, pattern: RegExp, timeout?: number) =>
    page.waitForFunction(`${pattern}.test(document.querySelector(${JSON.stringify(selector)})?.textContent ?? '')`, undefined, timeout === undefined ? {} : { timeout })

  await page.goto(`${base}/public/app`)
  t.equal(await page.title(), 'jotgate demo', 'the page is served through the gateway')

  await page.click('#call')
  await waitText('#api', /\d/)
  t.equal(await text('#api'), '401 JOTGATE_TOKEN_MISSING', 'signed out: the protected route refuses')

  await page.click('#login')
  await waitText('#status', /signed in/)
  t.match(await text('#status'), /^signed in as alice/)
  const cookies = await context.cookies()
  const access = cookies.find((c) => c.name === 'jotgate_access')
  t.ok(access, 'the access token is a cookie')
  t.equal(access?.httpOnly, true, 'HttpOnly')
  t.equal(access?.sameSite, 'Strict', 'SameSite=Strict')
  t.equal(cookies.find((c) => c.name === 'jotgate_refresh')?.path, '/auth', 'the refresh cookie only goes to the token endpoints')
  t.notMatch(await page.evaluate('document.cookie') as string, /jotgate_/, 'scripts cannot read the tokens')

  await page.click('#call')
  await waitText('#api', /x-user-id/)
  t.equal(await text('#api'), '200 from the upstream, which was told x-user-id: alice, x-user-roles: admin', 'the cookie authenticates the call')

  await page.click('#ws-open')
  await waitText('#ws-log', /hello/)
  t.equal(await text('#ws-state'), 'open')
  t.match(await text('#ws-log'), /^hello alice\n/, 'the WebSocket upstream was told who the user is')
  await page.fill('#ws-text', 'ping through jotgate')
  await page.click('#ws-send')
  await waitText('#ws-log', /echo: ping/)
  t.match(await text('#ws-log'), /echo: ping through jotgate\n/, 'frames both ways')

  // Cross-origin form POST with the cookie: refused, nothing forwarded.
  const other = await context.newPage()
  await other.goto(`http://127.0.0.1:${(foreign.address() as AddressInfo).port}/`)
  await other.waitForURL(`${base}/api/orders`)
  const refused = JSON.parse((await other.textContent('body')) ?? '{}') as { code?: string, statusCode?: number }
  t.same([refused.statusCode, refused.code], [403, 'JOTGATE_CSRF'], 'a cross-origin POST carrying the cookie is refused')
  await other.close()
  const lines = out.split('\n').filter((l) => l.includes('"JOTGATE_CSRF"'))
  t.equal(lines.length, 1, 'the gateway logged the refusal')
  t.match(JSON.parse(lines[0]!), { method: 'POST', status: 403, code: 'JOTGATE_CSRF', reason: 'origin-untrusted' })

  const loggedOut = Date.now()
  await page.click('#logout')
  await waitText('#status', /^signed out$/)
  await waitText('#ws-state', /^closed/, 5000)
  t.equal(await text('#ws-state'), 'closed 4003 token revoked', 'logout closes the WebSocket')
  // The 2 s bound itself is measured in test/integration/websocket.test.ts;
  // here it also holds the click, the logout call and the page's rendering.
  t.ok(Date.now() - loggedOut < 4000, `closed ${Date.now() - loggedOut} ms after the logout click`)
  t.notOk((await context.cookies()).some((c) => c.name.startsWith('jotgate_')), 'logout cleared the cookies')
  await page.click('#call')
  await waitText('#api', /^401/)
  t.equal(await text('#api'), '401 JOTGATE_TOKEN_MISSING')

  // The browser goes first: a connection it opened ahead of need (and never
  // used) would otherwise hold the gateway's shutdown for its grace period.
  await context.close()
  demo.kill('SIGINT')
  const [code] = await once(demo, 'exit')
  t.equal(code, 0, 'the demo stops cleanly')
})
