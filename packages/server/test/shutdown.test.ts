import net from 'node:net';
import { waitFor } from '@raibid/common/testing';
import { describe, expect, it } from 'vitest';
import { API_TOKEN, startTestServer, useRedis } from './support/server.js';

const redis = useRedis();

/** Everything the server writes on `socket` until it closes the connection. */
function readAll(socket: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
    });
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

describe('shutdown', () => {
  // /health is answered before fastify routes it (health-fast-path.ts), except while shutting down.
  it.each(['/api/v1/queue', '/health'])(
    'answers %s arriving while it shuts down with 503 in the error shape, and finishes the one in flight',
    async (path) => {
      const server = await startTestServer(redis, { listen: true });
      const { port } = new URL(server.url);
      const arrived = new Promise<void>((resolve) => server.app.server.once('request', () => resolve()));
      const socket = net.connect(Number(port), '127.0.0.1');
      const response = readAll(socket);
      const body = JSON.stringify({ repo: 'alice/hello' });
      // A request in flight (its body not all sent yet) keeps the connection open during close().
      socket.write(
        `POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API_TOKEN}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`,
      );
      await arrived;
      const closing = server.close();
      await waitFor('the listener to stop accepting', () => !server.app.server.listening);
      // The rest of the body, and a second request behind it on the same connection.
      socket.write(`${body.slice(5)}GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
      const text = await response;
      await closing;

      const [first, second] = text.split(/(?=HTTP\/1\.1 )/);
      expect(first).toMatch(/^HTTP\/1\.1 201 /);
      expect(second).toMatch(/^HTTP\/1\.1 503 /);
      expect(second).toMatch(/\r\nx-request-id: [0-9a-f-]{36}\r\n/);
      expect(second).toMatch(/\r\nconnection: close\r\n/i);
      const metrics = await server.deps.metrics.registry.metrics();
      expect(metrics).toContain(
        `raibid_http_request_duration_seconds_count{method="GET",route="${path}",status_code="503"} 1`,
      );
      const error = JSON.parse(second!.slice(second!.indexOf('\r\n\r\n') + 4));
      expect(error).toEqual({ error: { code: 'shutting_down', message: expect.stringMatching(/retry/) } });
    },
  );
});
