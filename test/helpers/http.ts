/**
 * One HTTP request with exactly the headers given (repeated names kept as
 * separate lines, Origin and Cookie as a browser would send them), on a
 * fresh connection, for the browser-facing tests (CORS, CSRF, cookies).
 */
import { request } from 'node:http'

export interface RawAnswer {
  status: number
  headers: Record<string, string | string[] | undefined>
  /** Parsed JSON body, or undefined. */
  json: Record<string, unknown> | undefined
  text: string
}

/**
 * @param headers `[name, value]` pairs, sent in order
 */
export function send (base: string, method: string, path: string, headers: Array<[string, string]> = [], body?: string): Promise<RawAnswer> {
  const url = new URL(path, base)
  // With a raw header list Node adds no Host of its own.
  const flat: string[] = headers.some(([k]) => k.toLowerCase() === 'host') ? [] : ['Host', url.host]
  for (const [k, v] of headers) flat.push(k, v)
  // Like a browser's fetch: a POST without a body says Content-Length: 0.
  if (body !== undefined || !['GET', 'HEAD', 'OPTIONS'].includes(method)) flat.push('Content-Length', String(Buffer.byteLength(body ?? '')))
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path: `${url.pathname}${url.search}`, headers: flat, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let json: Record<string, unknown> | undefined
        try { json = JSON.parse(text) as Record<string, unknown> } catch { json = undefined }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, json, text })
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** Every `access-control-*` header of an answer. */
export function corsHeaders (answer: RawAnswer): Record<string, unknown> {
  return Object.fromEntries(Object.entries(answer.headers).filter(([k]) => k.startsWith('access-control-')))
}
