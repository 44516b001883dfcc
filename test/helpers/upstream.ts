/**
 * A real echo upstream on a loopback port: records every request it gets
 * (method, url, headers) and answers with them as JSON, so tests can
 * assert what the upstream saw, or that it saw nothing.
 */
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface SeenRequest {
  method: string
  url: string
  headers: IncomingMessage['headers']
  rawHeaders: string[]
  body: string
}

export interface Upstream {
  url: string
  port: number
  seen: SeenRequest[]
  /** Replace the default echo answer. */
  handle: (fn: ((req: IncomingMessage, res: ServerResponse, body: string) => void) | undefined) => void
  close: () => Promise<void>
  server: Server
}

export async function startUpstream (): Promise<Upstream> {
  const seen: SeenRequest[] = []
  let custom: ((req: IncomingMessage, res: ServerResponse, body: string) => void) | undefined
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body })
      if (custom !== undefined) return custom(req, res, body)
      res.setHeader('content-type', 'application/json')
      res.setHeader('x-upstream', 'echo')
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body }))
    })
  })
  server.keepAliveTimeout = 1000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    seen,
    server,
    handle: (fn) => { custom = fn },
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()) })
  }
}
