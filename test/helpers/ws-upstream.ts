/**
 * A real WebSocket upstream on a loopback port: records every handshake it
 * accepts (url, headers) and every plain HTTP request, echoes each message
 * back (`echo:` + text, or the same bytes), picks the last subprotocol
 * offered, and refuses handshakes under /reject with a 409 JSON answer.
 * Tests assert what it saw, or that it saw nothing.
 */
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { WebSocketServer, type WebSocket } from 'ws'

export interface WsUpstream {
  url: string
  /** Handshakes accepted, in order. */
  handshakes: Array<{ url: string, headers: IncomingMessage['headers'] }>
  /** Plain HTTP requests (not upgrades). */
  requests: Array<{ method: string, url: string, headers: IncomingMessage['headers'] }>
  /** Upgrade requests refused under /reject. */
  rejected: number
  sockets: WebSocket[]
  /** Close codes the upstream received, in order. */
  closes: number[]
  close: () => Promise<void>
}

export async function startWsUpstream (): Promise<WsUpstream> {
  const up: WsUpstream = { url: '', handshakes: [], requests: [], rejected: 0, sockets: [], closes: [], close: async () => {} }
  const server = createServer((req, res) => {
    up.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers })
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ url: req.url, headers: req.headers }))
  })
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (offered) => [...offered].at(-1) ?? false })
  server.on('upgrade', (req, socket, head) => {
    if (req.url?.startsWith('/reject') === true) {
      up.rejected++
      const body = '{"why":"upstream says no"}'
      socket.end(`HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nX-Upstream: ws\r\n\r\n${body}`)
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      up.handshakes.push({ url: req.url ?? '', headers: req.headers })
      up.sockets.push(ws)
      ws.on('message', (data, isBinary) => {
        if (isBinary) ws.send(data, { binary: true })
        else if (String(data) === 'close-me') ws.close(4321, 'bye')
        else ws.send(`echo:${String(data)}`)
      })
      ws.on('close', (code) => up.closes.push(code))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  up.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  up.close = () => new Promise((resolve) => {
    for (const ws of up.sockets) ws.terminate()
    server.closeAllConnections()
    server.close(() => resolve())
  })
  return up
}
