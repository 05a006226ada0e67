import { type AgentInfo, type ApiJob, agentInfoSchema, apiJobSchema, type JobStatus } from '@raibid/common';
import { z } from 'zod';
import { CliError, EXIT } from '../errors.js';

/** Body of `POST /api/v1/jobs` as the CLI sends it. */
export interface SubmitRequest {
  repo: string;
  ref?: string;
  sha?: string;
  env?: Record<string, string>;
}

export interface ListFilter {
  status?: JobStatus;
  repo?: string;
  limit?: number;
  cursor?: string;
}

const jobPageSchema = z.object({ jobs: z.array(apiJobSchema), nextCursor: z.string().nullable() });
export type JobPage = z.infer<typeof jobPageSchema>;

const count = z.number().int().nonnegative();
const poolQueueSchema = z.object({ lag: count, pending: count, unavailable: z.string().nullable() });
/** `GET /api/v1/queue`; `pools` (per pool, since the GPU pool) is absent from older servers. */
const queueSchema = z.object({
  lag: count,
  pending: count,
  running: count,
  agents: count,
  pools: z.record(z.string(), poolQueueSchema).optional(),
});
export type QueueInfo = z.infer<typeof queueSchema>;

/** `GET /api/v1/agents`: a bare list, or the list under `agents`. */
const agentsSchema = z
  .union([z.array(agentInfoSchema), z.object({ agents: z.array(agentInfoSchema) })])
  .transform((value) => (Array.isArray(value) ? value : value.agents));

const errorBodySchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});

/** The server answered with an error status. */
export class ApiError extends CliError {
  override name = 'ApiError';
  constructor(
    message: string,
    readonly status: number,
    code: string,
    readonly details?: unknown,
  ) {
    // Statuses that mean "what you asked for is wrong" are usage errors; the rest mean the server is not usable.
    super(message, [400, 404, 409, 413, 422].includes(status) ? EXIT.usage : EXIT.unavailable, code);
  }
}

export interface ApiClientOptions {
  /** Base URL of the server, e.g. http://localhost:8080 (RAIBID_URL). */
  baseUrl: string;
  /** Bearer token for writes (RAIBID_API_TOKEN). */
  token?: string | undefined;
  /** Per-request timeout of non-streaming requests. */
  timeoutMs?: number;
}

/** Checks RAIBID_URL / --url up front so a typo is a usage error, not "unreachable". */
export function parseBaseUrl(input: string): string {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new CliError(`RAIBID_URL "${input}" is not a URL; e.g. http://localhost:8080`, EXIT.usage);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CliError(`RAIBID_URL "${input}" must be an http(s) URL`, EXIT.usage);
  }
  return url.toString().replace(/\/+$/, '');
}

/** What the `details` of an API error (field issues or a string) add to its message, as one line. */
function detailsSummary(message: string, details: unknown): string {
  if (typeof details === 'string') return message.includes(details) ? '' : details;
  const list = Array.isArray(details)
    ? details
    : details && typeof details === 'object' && 'issues' in details && Array.isArray(details.issues)
      ? details.issues
      : [];
  const parts = list.slice(0, 3).flatMap((issue: unknown) => {
    if (!issue || typeof issue !== 'object' || !('message' in issue)) return [];
    if (message.includes(String(issue.message))) return [];
    const where = 'path' in issue ? issue.path : '';
    const path = Array.isArray(where) ? where.join('.') : typeof where === 'string' ? where : '';
    return [path ? `${path}: ${String(issue.message)}` : String(issue.message)];
  });
  return parts.join('; ');
}

/** The raibid HTTP API (CONTRACT.md "HTTP API"), every response parsed with the contract's schemas. */
export class ApiClient {
  readonly baseUrl: string;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;

  constructor(options: ApiClientOptions) {
    this.baseUrl = parseBaseUrl(options.baseUrl);
    this.token = options.token?.trim() || undefined;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** Web UI page of a job. */
  jobUrl(id: string): string {
    return `${this.baseUrl}/jobs/${encodeURIComponent(id)}`;
  }

  submit(request: SubmitRequest): Promise<ApiJob> {
    return this.call('POST', '/api/v1/jobs', apiJobSchema, request);
  }

  list(filter: ListFilter = {}): Promise<JobPage> {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(filter)) {
      if (value !== undefined) query.set(key, String(value));
    }
    const search = query.size > 0 ? `?${query}` : '';
    return this.call('GET', `/api/v1/jobs${search}`, jobPageSchema);
  }

  get(id: string): Promise<ApiJob> {
    return this.call('GET', `/api/v1/jobs/${encodeURIComponent(id)}`, apiJobSchema);
  }

  /** The whole log so far as text. */
  async logText(id: string): Promise<string> {
    const response = await this.request('GET', `/api/v1/jobs/${encodeURIComponent(id)}/logs`, {
      accept: 'text/plain',
    });
    return response.text();
  }

  /** Asks for cancellation (202); returns the job as the server reports it. */
  cancel(id: string): Promise<ApiJob> {
    return this.call('POST', `/api/v1/jobs/${encodeURIComponent(id)}/cancel`, apiJobSchema);
  }

  retry(id: string): Promise<ApiJob> {
    return this.call('POST', `/api/v1/jobs/${encodeURIComponent(id)}/retry`, apiJobSchema);
  }

  queue(): Promise<QueueInfo> {
    return this.call('GET', '/api/v1/queue', queueSchema);
  }

  agents(): Promise<AgentInfo[]> {
    return this.call('GET', '/api/v1/agents', agentsSchema);
  }

  /**
   * Opens the SSE log stream of a job, resuming after `lastEventId`. The caller reads the body;
   * `signal` ends it. Error statuses throw ApiError like every other call.
   */
  openLogStream(id: string, lastEventId: string | null, signal?: AbortSignal): Promise<Response> {
    return this.request('GET', `/api/v1/jobs/${encodeURIComponent(id)}/logs`, {
      accept: 'text/event-stream',
      ...(lastEventId !== null ? { lastEventId } : {}),
      stream: true,
      ...(signal ? { signal } : {}),
    });
  }

  private async call<S extends z.ZodType>(
    method: 'GET' | 'POST',
    path: string,
    schema: S,
    body?: unknown,
  ): Promise<z.infer<S>> {
    const response = await this.request(method, path, { accept: 'application/json', body });
    let json: unknown;
    try {
      json = await response.json();
    } catch {
      throw new CliError(
        `unexpected response from ${method} ${path}: not JSON (is RAIBID_URL a raibid server?)`,
        EXIT.unavailable,
        'bad_response',
      );
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
      throw new CliError(
        `unexpected response from ${method} ${path}: ${where}${issue?.message ?? 'invalid'} (server and CLI versions differ?)`,
        EXIT.unavailable,
        'bad_response',
      );
    }
    return parsed.data;
  }

  private async request(
    method: 'GET' | 'POST',
    path: string,
    options: {
      accept: string;
      body?: unknown;
      lastEventId?: string;
      stream?: boolean;
      signal?: AbortSignal;
    },
  ): Promise<Response> {
    const headers: Record<string, string> = { accept: options.accept };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (options.lastEventId !== undefined) headers['last-event-id'] = options.lastEventId;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    // Streams may stay open for as long as a job runs: only the caller's signal ends them.
    const signal = options.stream
      ? options.signal
      : AbortSignal.any([AbortSignal.timeout(this.timeoutMs), ...(options.signal ? [options.signal] : [])]);
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers,
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
        ...(signal ? { signal } : {}),
      });
    } catch (error) {
      if (options.signal?.aborted) throw error;
      throw this.unreachable(error);
    }
    if (!response.ok) throw await this.apiError(method, path, response);
    return response;
  }

  /** One line saying why the server could not be reached and what to do. */
  unreachable(error: unknown): CliError {
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
    const code =
      cause && typeof cause === 'object' && 'code' in cause ? String((cause as { code: unknown }).code) : '';
    let reason: string;
    if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
      reason = `no answer within ${Math.round(this.timeoutMs / 1000)} s`;
    } else if (code === 'ECONNREFUSED') {
      reason = 'connection refused';
    } else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
      reason = 'host not found';
    } else {
      reason = cause instanceof Error ? cause.message : String(cause);
    }
    return new CliError(
      `cannot reach the raibid server at ${this.baseUrl} (${reason}); start it with "pnpm dev" or set RAIBID_URL`,
      EXIT.unavailable,
      'unreachable',
    );
  }

  private async apiError(method: string, path: string, response: Response): Promise<ApiError> {
    const text = await response.text().catch(() => '');
    let body: z.infer<typeof errorBodySchema> | undefined;
    try {
      const parsed = errorBodySchema.safeParse(JSON.parse(text));
      if (parsed.success) body = parsed.data;
    } catch {
      // not JSON: described by the status below
    }
    const status = response.status;
    if (!body) {
      return new ApiError(
        `${method} ${path} failed with HTTP ${status}${response.statusText ? ` ${response.statusText}` : ''}`,
        status,
        `http_${status}`,
      );
    }
    const { code, message, details } = body.error;
    const summary = detailsSummary(message, details);
    let hint = '';
    if (status === 401 || status === 403) {
      hint = this.token ? ' (check RAIBID_API_TOKEN)' : " (set RAIBID_API_TOKEN to the server's token)";
    }
    const described = summary ? `${message}: ${summary}` : message;
    return new ApiError(`${described}${hint}`, status, code, details);
  }
}
