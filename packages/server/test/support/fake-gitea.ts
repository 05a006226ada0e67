import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A status as the fake Gitea stored it, with what the request looked like. */
export interface ReceivedStatus {
  owner: string;
  repo: string;
  sha: string;
  authorization: string | undefined;
  body: { state: string; target_url: string; description: string; context: string };
}

export interface FakeGitea {
  url: string;
  token: string;
  /** Statuses accepted (201), in arrival order. */
  statuses: ReceivedStatus[];
  /** Every request that arrived, accepted or not. */
  requests: number;
  /** Answer the next `n` requests with `status` (or drop the connection when status is 0). */
  failNext(n: number, status: number): void;
  /** Answer every request with `status` until called again with null. */
  failAll(status: number | null): void;
  close(): Promise<void>;
}

const STATES = ['pending', 'success', 'error', 'failure', 'warning'];
const PATH = /^\/api\/v1\/repos\/([^/]+)\/([^/]+)\/statuses\/([0-9a-f]{40})$/;

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/**
 * A stand-in for Gitea's `POST /api/v1/repos/{owner}/{repo}/statuses/{sha}` that checks
 * requests the way Gitea does: `Authorization: token <t>` (401 otherwise), a JSON body of
 * `CreateStatusOption` with a valid state (422 otherwise), and answers 201 with a `CommitStatus`.
 */
export async function startFakeGitea(token = 'gitea-token-abc'): Promise<FakeGitea> {
  const statuses: ReceivedStatus[] = [];
  let failures: { left: number; status: number } = { left: 0, status: 500 };
  let failing: number | null = null;
  let nextId = 1;
  const state = { requests: 0 };

  const handle = (req: IncomingMessage, res: ServerResponse, raw: string): void => {
    state.requests++;
    let status = failing;
    if (status === null && failures.left > 0) {
      failures.left--;
      status = failures.status;
    }
    if (status === 0) {
      req.socket.destroy();
      return;
    }
    if (status !== null) {
      send(res, status, { message: 'simulated failure' });
      return;
    }
    const match = req.method === 'POST' ? PATH.exec(req.url ?? '') : null;
    if (!match) {
      send(res, 404, { message: 'not found' });
      return;
    }
    if (req.headers.authorization !== `token ${token}`) {
      send(res, 401, { message: 'token is required' });
      return;
    }
    if (!String(req.headers['content-type']).startsWith('application/json')) {
      send(res, 415, { message: 'content type' });
      return;
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw);
    } catch {
      send(res, 422, { message: 'invalid JSON' });
      return;
    }
    const keys = Object.keys(body).sort();
    const expected = ['context', 'description', 'state', 'target_url'];
    if (
      JSON.stringify(keys) !== JSON.stringify(expected) ||
      !STATES.includes(body.state as string) ||
      typeof body.target_url !== 'string' ||
      typeof body.description !== 'string' ||
      typeof body.context !== 'string'
    ) {
      send(res, 422, { message: `bad CreateStatusOption: ${raw}` });
      return;
    }
    const [, owner, repo, sha] = match as unknown as [string, string, string, string];
    statuses.push({
      owner,
      repo,
      sha,
      authorization: req.headers.authorization,
      body: body as ReceivedStatus['body'],
    });
    const now = new Date().toISOString();
    send(res, 201, {
      id: nextId++,
      status: body.state,
      target_url: body.target_url,
      description: body.description,
      url: `http://gitea.test/api/v1/repos/${owner}/${repo}/statuses/${sha}`,
      context: body.context,
      creator: { id: 3, login: 'raibid-bot' },
      created_at: now,
      updated_at: now,
    });
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    token,
    statuses,
    get requests() {
      return state.requests;
    },
    failNext(n, status) {
      failures = { left: n, status };
    },
    failAll(status) {
      failing = status;
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
