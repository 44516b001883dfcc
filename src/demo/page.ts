/**
 * The demo's browser page, served by the demo upstream at /public/app (an
 * `auth: none` route), so it is same-origin with the gateway: it logs in
 * asking for cookies (the token lives in an HttpOnly cookie the page never
 * sees), calls a protected route, opens a WebSocket through jotgate, and
 * logs out (which closes the WebSocket with 4003 within 2 s).
 */
export const DEMO_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>jotgate demo</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
  fieldset { margin: 1rem 0; border: 1px solid #ccc; border-radius: 6px; }
  pre { background: #f5f5f5; padding: .5rem; min-height: 1.5rem; white-space: pre-wrap; }
  output { font-weight: bold; }
</style>
</head>
<body>
<h1>jotgate demo</h1>
<p>Everything below goes through jotgate. The access token is kept in an
HttpOnly cookie: this page cannot read it, the browser sends it.</p>

<fieldset>
  <legend>1. Log in</legend>
  <label>user <input id="username" value="alice" autocomplete="username"></label>
  <label>password <input id="password" type="password" value="wonderland" autocomplete="current-password"></label>
  <button id="login">Log in</button>
  <button id="logout">Log out</button>
  <p>status: <output id="status">signed out</output></p>
</fieldset>

<fieldset>
  <legend>2. Call a protected route</legend>
  <button id="call">GET /api/orders</button>
  <pre id="api"></pre>
</fieldset>

<fieldset>
  <legend>3. WebSocket through jotgate</legend>
  <button id="ws-open">Open /ws/echo</button>
  <input id="ws-text" value="hello">
  <button id="ws-send">Send</button>
  <p>socket: <output id="ws-state">closed</output></p>
  <pre id="ws-log"></pre>
</fieldset>

<script>
const $ = (id) => document.getElementById(id)
const show = (id, text) => { $(id).textContent = text }
let socket

$('login').onclick = async () => {
  const res = await fetch('/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: $('username').value, password: $('password').value, client_id: 'web', cookie: true })
  })
  const body = await res.json()
  show('status', res.ok ? 'signed in as ' + $('username').value + ' (token expires in ' + body.expires_in + ' s)' : 'login refused: ' + body.code)
}

$('logout').onclick = async () => {
  const res = await fetch('/auth/logout', { method: 'POST' })
  show('status', res.status === 204 ? 'signed out' : 'logout refused: ' + (await res.json()).code)
}

$('call').onclick = async () => {
  const res = await fetch('/api/orders')
  const body = await res.json()
  show('api', res.ok
    ? res.status + ' from the upstream, which was told x-user-id: ' + body.identity['x-user-id'] + ', x-user-roles: ' + body.identity['x-user-roles']
    : res.status + ' ' + body.code)
}

$('ws-open').onclick = () => {
  socket = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws/echo')
  show('ws-state', 'connecting')
  socket.onopen = () => show('ws-state', 'open')
  socket.onmessage = (event) => {
    const msg = JSON.parse(event.data)
    $('ws-log').textContent += (msg.type === 'hello' ? 'hello ' + msg.user : 'echo: ' + msg.data) + '\\n'
  }
  socket.onclose = (event) => show('ws-state', 'closed ' + event.code + (event.reason ? ' ' + event.reason : ''))
}

$('ws-send').onclick = () => socket && socket.send($('ws-text').value)
</script>
</body>
</html>
`
