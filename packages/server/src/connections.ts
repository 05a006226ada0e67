import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Knows which connections are in the middle of a request. On shutdown every other
 * connection can go at once: Node's closeIdleConnections() skips a connection that was
 * opened but has not sent a request yet, and runs only once, so a keep-alive connection
 * whose response ends afterwards (a log stream ended on shutdown) would hold
 * server.close() until its keep-alive timeout.
 */
export function trackConnections(server: Server): { dropIdle(): void } {
  const sockets = new Set<Socket>();
  const busy = new Map<Socket, number>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      busy.delete(socket);
    });
  });
  server.on('request', (request, response) => {
    const socket = request.socket;
    busy.set(socket, (busy.get(socket) ?? 0) + 1);
    response.once('close', () => {
      const left = (busy.get(socket) ?? 1) - 1;
      if (left > 0) busy.set(socket, left);
      else busy.delete(socket);
    });
  });
  return {
    dropIdle() {
      for (const socket of sockets) if (!busy.has(socket)) socket.destroy();
    },
  };
}
