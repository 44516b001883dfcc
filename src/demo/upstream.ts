/**
 * The demo's "legacy service": it knows nothing of tokens and shows what
 * jotgate told it about the caller through headers. It also serves the
 * browser page (/public/app) and a WebSocket echo (any upgrade) that first
 * greets the caller by the identity headers of its handshake.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { WebSocketServer } from 'ws'
import { DEMO_PAGE } from './page.js'

const identityOf = (req: IncomingMessage) => Object.fromEntries(Object.entries(req.headers).filter(([k]) => k.startsWith('x-')))

export function createDemoUpstream (): Server {
  const server = createServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/public/app' || req.url?.startsWith('/public/app?') === true)) {
      res.setHeader('content-type', 'text/html; charset=utf-8')
      res.end(DEMO_PAGE)
      return
    }
    res.setHeader('content-type', 'application/json')
    res.end(`${JSON.stringify({ service: 'demo-upstream', method: req.method, path: req.url, identity: identityOf(req) }, null, 2)}\n`)
  })
  const wss = new WebSocketServer({ noServer: true })
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send(JSON.stringify({ type: 'hello', user: req.headers['x-user-id'] ?? null, identity: identityOf(req) }))
      ws.on('message', (data) => ws.send(JSON.stringify({ type: 'echo', data: String(data) })))
    })
  })
  return server
}
