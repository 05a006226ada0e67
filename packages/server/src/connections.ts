import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/** Node sets this on a socket while one of its responses is being written, and clears it after. */
type HttpSocket = Socket & { _httpMessage?: unknown };

/**
 * Knows the open connections. On shutdown every connection not in the middle of a request
 * can go at once: Node's closeIdleConnections() skips a connection that was opened but has
 * not sent a request yet, and runs only once, so a keep-alive connection whose response ends
 * afterwards (a log stream ended on shutdown) would hold server.close() until its keep-alive
 * timeout. A connection is busy while Node has a response on it (`_httpMessage`, as
 * http-terminator reads it): nothing is tracked per request.
 */
export function trackConnections(server: Server): { dropIdle(): void } {
  const sockets = new Set<HttpSocket>();
  server.on('connection', (socket: HttpSocket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return {
    dropIdle() {
      for (const socket of sockets) if (!socket._httpMessage) socket.destroy();
    },
  };
}
