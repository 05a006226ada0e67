import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StubRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Writes the response itself (status, headers, body; SSE when it wants). */
export type StubHandler = (request: StubRequest, res: http.ServerResponse) => void | Promise<void>;

export interface ApiStub {
  url: string;
  /** Every request received, in order. */
  requests: StubRequest[];
  /** Routes by `METHOD /path` (no query); a missing route answers 404 in the API's error shape. */
  routes: Map<string, StubHandler>;
  stop(): Promise<void>;
}

export function json(res: http.ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

export function apiError(
  res: http.ServerResponse,
  status: number,
  code: string,
  message: string,
  details?: unknown,
): void {
  json(res, status, { error: { code, message, ...(details !== undefined ? { details } : {}) } });
}

/** Opens an SSE response; `send` writes one event. */
export function sse(res: http.ServerResponse): { send(event: string, data: unknown, id?: string): void } {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.write(': stream opened\n\n');
  return {
    send(event, data, id) {
      res.write(`${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },
  };
}

/** A real HTTP server on 127.0.0.1 that answers like the raibid API from per-test routes. */
export async function startApiStub(): Promise<ApiStub> {
  const requests: StubRequest[] = [];
  const routes = new Map<string, StubHandler>();
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://stub');
    const request: StubRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      body: Buffer.concat(chunks).toString('utf8'),
    };
    requests.push(request);
    const handler = routes.get(`${request.method} ${request.path}`);
    if (!handler) {
      apiError(res, 404, 'not_found', `no route ${request.method} ${request.path}`);
      return;
    }
    await handler(request, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    routes,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
