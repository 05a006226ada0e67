import { z } from 'zod';
import { CliError, EXIT } from '../errors.js';

/** How a Gitea request authenticates: the admin's password (basic auth) or an access token. */
export type GiteaAuth = { basic: { user: string; password: string } } | { token: string } | null;

/** Gitea answered with an error status; `status` lets callers treat 404 as "not there". */
export class GiteaError extends CliError {
  override name = 'GiteaError';
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(
      message,
      status >= 500 || status === 401 || status === 403 ? EXIT.unavailable : EXIT.usage,
      'gitea',
    );
  }
}

const userSchema = z.object({ login: z.string(), is_admin: z.boolean().optional() });
const tokenSchema = z.object({ name: z.string(), sha1: z.string().optional() });
const repoSchema = z.object({ full_name: z.string(), clone_url: z.string(), private: z.boolean() });
const refSchema = z.object({ ref: z.string(), object: z.object({ sha: z.string() }) });
const hookSchema = z.object({
  id: z.number(),
  type: z.string(),
  active: z.boolean(),
  events: z.array(z.string()),
  config: z.record(z.string(), z.string()),
});
export type GiteaHook = z.infer<typeof hookSchema>;
export type GiteaRepo = z.infer<typeof repoSchema>;

/** Body of POST/PATCH .../hooks (Gitea's CreateHookOption / EditHookOption). */
export interface HookOptions {
  type?: 'gitea';
  active: boolean;
  events: string[];
  branch_filter?: string;
  config: { url: string; content_type: 'json'; secret: string };
}

/** The few Gitea API calls seed-gitea and trigger-test-job make (Gitea 1.2x, /api/v1). */
export class GiteaClient {
  readonly url: string;

  constructor(
    url: string,
    private readonly timeoutMs = 15_000,
  ) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new CliError(`GITEA_URL "${url}" is not a URL; e.g. http://localhost:3000`, EXIT.usage);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new CliError(`GITEA_URL "${url}" must be an http(s) URL`, EXIT.usage);
    }
    this.url = parsed.toString().replace(/\/+$/, '');
  }

  async version(): Promise<string> {
    const body = await this.call('GET', '/version', null, z.object({ version: z.string() }));
    return body.version;
  }

  /** The user `auth` logs in as. */
  currentUser(auth: GiteaAuth): Promise<z.infer<typeof userSchema>> {
    return this.call('GET', '/user', auth, userSchema);
  }

  listTokens(user: string, auth: GiteaAuth): Promise<z.infer<typeof tokenSchema>[]> {
    return this.call('GET', `/users/${enc(user)}/tokens`, auth, z.array(tokenSchema));
  }

  async deleteToken(user: string, name: string, auth: GiteaAuth): Promise<void> {
    await this.call('DELETE', `/users/${enc(user)}/tokens/${enc(name)}`, auth, z.unknown());
  }

  /** A new access token; Gitea shows its value (`sha1`) only in this answer. */
  async createToken(user: string, name: string, scopes: string[], auth: GiteaAuth): Promise<string> {
    const body = await this.call('POST', `/users/${enc(user)}/tokens`, auth, tokenSchema, { name, scopes });
    if (!body.sha1) throw new GiteaError('Gitea created the token but did not return its value', 502);
    return body.sha1;
  }

  /** Sets a user's password (needs an admin's credentials). */
  async setPassword(user: string, password: string, auth: GiteaAuth): Promise<void> {
    await this.call('PATCH', `/admin/users/${enc(user)}`, auth, z.unknown(), {
      login_name: user,
      source_id: 0,
      password,
      must_change_password: false,
    });
  }

  /** The repository, or null when it does not exist (or `auth` may not see it). */
  async repo(owner: string, name: string, auth: GiteaAuth): Promise<GiteaRepo | null> {
    return this.orNull(this.call('GET', `/repos/${enc(owner)}/${enc(name)}`, auth, repoSchema));
  }

  createUserRepo(name: string, description: string, auth: GiteaAuth): Promise<GiteaRepo> {
    return this.call('POST', '/user/repos', auth, repoSchema, {
      name,
      description,
      private: false,
      auto_init: false,
      default_branch: 'main',
    });
  }

  /**
   * The commit a branch points at, or null when it does not exist (an empty repository). Read from
   * the refs API: Gitea's branches API fails for a repository it still marks empty after a push.
   */
  async branchHead(owner: string, name: string, branch: string, auth: GiteaAuth): Promise<string | null> {
    const ref = `refs/heads/${branch}`;
    const path = `/repos/${enc(owner)}/${enc(name)}/git/${ref.split('/').map(enc).join('/')}`;
    // A prefix match: heads/main also lists heads/main-2.
    const refs = await this.orNull(this.call('GET', path, auth, z.union([refSchema, z.array(refSchema)])));
    const list = refs === null ? [] : Array.isArray(refs) ? refs : [refs];
    return list.find((r) => r.ref === ref)?.object.sha ?? null;
  }

  listHooks(owner: string, name: string, auth: GiteaAuth): Promise<GiteaHook[]> {
    return this.call('GET', `/repos/${enc(owner)}/${enc(name)}/hooks`, auth, z.array(hookSchema));
  }

  createHook(owner: string, name: string, hook: HookOptions, auth: GiteaAuth): Promise<GiteaHook> {
    return this.call('POST', `/repos/${enc(owner)}/${enc(name)}/hooks`, auth, hookSchema, hook);
  }

  editHook(owner: string, name: string, id: number, hook: HookOptions, auth: GiteaAuth): Promise<GiteaHook> {
    return this.call('PATCH', `/repos/${enc(owner)}/${enc(name)}/hooks/${id}`, auth, hookSchema, hook);
  }

  private async orNull<T>(request: Promise<T>): Promise<T | null> {
    try {
      return await request;
    } catch (error) {
      if (error instanceof GiteaError && error.status === 404) return null;
      throw error;
    }
  }

  private async call<S extends z.ZodType>(
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    path: string,
    auth: GiteaAuth,
    schema: S,
    body?: unknown,
  ): Promise<z.infer<S>> {
    const headers: Record<string, string> = { accept: 'application/json', ...authHeader(auth) };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(`${this.url}/api/v1${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw this.unreachable(error);
    }
    const text = await response.text();
    if (!response.ok)
      throw new GiteaError(this.describe(method, path, response.status, text), response.status);
    if (response.status === 204 || text === '') return schema.parse(undefined);
    const parsed = schema.safeParse(JSON.parse(text));
    if (!parsed.success) {
      throw new CliError(
        `unexpected answer from Gitea to ${method} ${path} (is GITEA_URL a Gitea 1.2x?)`,
        EXIT.unavailable,
        'bad_response',
      );
    }
    return parsed.data;
  }

  private describe(method: string, path: string, status: number, text: string): string {
    let message = '';
    try {
      const body = JSON.parse(text) as { message?: unknown };
      if (typeof body.message === 'string') message = body.message;
    } catch {
      message = text.trim().slice(0, 200);
    }
    return `Gitea answered ${method} /api/v1${path} with HTTP ${status}${message ? `: ${message}` : ''}`;
  }

  private unreachable(error: unknown): CliError {
    let cause: unknown = error;
    while (cause instanceof Error && cause.cause) cause = cause.cause;
    const code = cause && typeof cause === 'object' && 'code' in cause ? String(cause.code) : '';
    const reason =
      error instanceof Error && error.name === 'TimeoutError'
        ? `no answer within ${Math.round(this.timeoutMs / 1000)} s`
        : code || (cause instanceof Error ? cause.message : String(cause));
    return new CliError(
      `cannot reach Gitea at ${this.url} (${reason}); with Tilt it is port-forwarded to localhost:3000 (resource gitea), else set GITEA_URL`,
      EXIT.unavailable,
      'gitea_unreachable',
    );
  }
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}

/** The Authorization header for `auth` (also used for git over HTTP). */
export function authHeader(auth: GiteaAuth): Record<string, string> {
  if (auth === null) return {};
  if ('token' in auth) return { authorization: `token ${auth.token}` };
  const basic = Buffer.from(`${auth.basic.user}:${auth.basic.password}`).toString('base64');
  return { authorization: `Basic ${basic}` };
}
