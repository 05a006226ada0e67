// Routing before queueing, against a real Gitea (the pinned binary, sqlite, on 127.0.0.1): the
// server reads .raibid.yml at the commit through Gitea's raw-file API with its token, and routes
// on runs-on; a private repository it cannot see, a missing file and a broken file each end where
// docs/gpu.md says; a signed push webhook for the commit queues the job in raibid:jobs:gpu.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GPU_JOBS_STREAM, JOBS_STREAM } from '../../packages/common/src/keys.js';
import { startRedis } from '../../packages/common/test/support/index.js';
import { giteaSignature } from '../../packages/server/src/gitea/webhook.js';
import { type Route, routeJob } from '../../packages/server/src/pool-routing.js';
import { startTestServer, WEBHOOK_SECRET } from '../../packages/server/test/support/server.js';
import { startGitea, type TestGitea } from './support/gitea.js';
import { needTools } from './support/tools.js';

const tools = needTools('gitea', 'git');
const PASSWORD = 'routing-admin-password-0123456789';

describe.skipIf(tools.skip)('routing on runs-on through a real Gitea', () => {
  let gitea: TestGitea;
  let token: string;
  const shas: Record<string, string> = {};

  const api = async (method: string, urlPath: string, body?: unknown) => {
    const basic = Buffer.from(`raibid:${PASSWORD}`).toString('base64');
    const response = await fetch(`${gitea.url}/api/v1${urlPath}`, {
      method,
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${urlPath}: ${response.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };

  /** A repository of user raibid with `.raibid.yml` = `pipeline` (none when null) on main. */
  async function repo(name: string, pipeline: string | null, options: { private?: boolean } = {}) {
    await api('POST', '/user/repos', {
      name,
      auto_init: true,
      default_branch: 'main',
      private: options.private ?? false,
    });
    if (pipeline !== null) {
      const created = await api('POST', `/repos/raibid/${name}/contents/.raibid.yml`, {
        content: Buffer.from(pipeline).toString('base64'),
        message: 'add .raibid.yml',
        branch: 'main',
      });
      shas[name] = created.commit.sha;
    }
  }

  const route = (name: string, options: { token?: string; requested?: 'cpu' | 'gpu'; sha?: string } = {}) =>
    routeJob(
      {
        job: {
          repo: { owner: 'raibid', name, cloneUrl: `${gitea.url}/raibid/${name}.git` },
          ref: 'main',
          sha: options.sha ?? null,
          trigger: 'api',
        },
        requested: options.requested,
      },
      {
        GITEA_URL: gitea.url,
        GITEA_TOKEN: 'token' in options ? options.token : token,
        RAIBID_ALLOW_FILE_REPOS: false,
      },
    );

  beforeAll(async () => {
    gitea = await startGitea(tools.path.gitea!);
    await gitea.createAdmin(PASSWORD);
    token = (await api('POST', '/users/raibid/tokens', { name: 'routing', scopes: ['read:repository'] }))
      .sha1;
    await repo('cuda', 'version: 1\nruns-on: gpu\nsteps:\n  - name: t\n    run: nvidia-smi\n', {
      private: true,
    });
    await repo('plain', null);
    await repo('broken', 'version: 1\nruns-on: tpu\nsteps:\n  - name: t\n    run: x\n');
  });
  afterAll(async () => {
    await gitea?.stop();
  });

  it('reads runs-on: gpu of a private repository with the token, at the ref or at the sha', async () => {
    expect(await route('cuda')).toEqual<Route>({
      kind: 'queue',
      pool: 'gpu',
      lines: ['[raibid] routed to the gpu pool: .raibid.yml at main says runs-on: gpu'],
    });
    expect(await route('cuda', { sha: shas.cuda })).toMatchObject({
      pool: 'gpu',
      lines: [`[raibid] routed to the gpu pool: .raibid.yml at ${shas.cuda} says runs-on: gpu`],
    });
    expect(await route('cuda', { requested: 'cpu' })).toEqual({
      kind: 'conflict',
      message:
        'pool "cpu" was asked for, but .raibid.yml at main says runs-on: gpu; leave out pool or change the file',
    });
  });

  it('without a token that can see it, the private repository is unreadable, not "no file"', async () => {
    const reason =
      'the server could not read .raibid.yml (Gitea does not show raibid/cuda (private, and GITEA_TOKEN cannot read it?))';
    expect(await route('cuda', { token: undefined })).toEqual({ kind: 'queue', pool: 'cpu', lines: [] });
    expect(await route('cuda', { token: undefined, requested: 'gpu' })).toEqual({
      kind: 'queue',
      pool: 'gpu',
      lines: [`[raibid] routed to the gpu pool as submitted: ${reason}; the agent checks its runs-on`],
    });
  });

  it('a repository without the file runs on cpu; asking for gpu is a conflict', async () => {
    expect(await route('plain')).toEqual({ kind: 'queue', pool: 'cpu', lines: [] });
    expect(await route('plain', { requested: 'gpu' })).toEqual({
      kind: 'conflict',
      message: 'pool "gpu" was asked for, but no .raibid.yml at main; leave out pool or change the file',
    });
  });

  it('a push webhook for a runs-on: gpu commit queues the job in raibid:jobs:gpu; a broken one ends error', async () => {
    const redis = await startRedis();
    const server = await startTestServer(redis, { env: { GITEA_URL: gitea.url, GITEA_TOKEN: token } });
    try {
      // Gitea's push payload (the server tests' fixture), for raibid/<name> at its commit.
      const push = (name: string, delivery: string) => {
        const payload = JSON.parse(
          readFileSync(
            new URL('../../packages/server/test/fixtures/gitea/push-branch.json', import.meta.url),
            'utf8',
          ),
        );
        payload.after = shas[name];
        payload.repository = {
          ...payload.repository,
          name,
          full_name: `raibid/${name}`,
          owner: { ...payload.repository.owner, login: 'raibid' },
          clone_url: `${gitea.url}/raibid/${name}.git`,
        };
        const body = Buffer.from(JSON.stringify(payload));
        return server.app.inject({
          method: 'POST',
          url: '/webhooks/gitea',
          headers: {
            'content-type': 'application/json',
            'x-gitea-event': 'push',
            'x-gitea-delivery': delivery,
            'x-gitea-signature': giteaSignature(WEBHOOK_SECRET, body),
          },
          payload: body,
        });
      };
      const gpu = await push('cuda', '7b1a6a52-0000-4000-8000-000000000001');
      expect(gpu.statusCode, gpu.body).toBe(202);
      const job = await server.deps.store.get(gpu.json().jobId);
      expect(job).toMatchObject({ status: 'queued', pool: 'gpu', sha: shas.cuda, trigger: 'push' });
      expect(await server.deps.redis.xlen(GPU_JOBS_STREAM)).toBe(1);
      expect(await server.deps.redis.xlen(JOBS_STREAM)).toBe(0);

      const broken = await push('broken', '7b1a6a52-0000-4000-8000-000000000002');
      expect(broken.statusCode).toBe(202);
      expect(await server.deps.store.get(broken.json().jobId)).toMatchObject({
        status: 'error',
        error: 'invalid pipeline file: .raibid.yml:2: runs-on: must be "cpu" or "gpu"',
      });
      expect(await server.deps.redis.xlen(JOBS_STREAM)).toBe(0);
    } finally {
      await server.close();
      await redis.stop();
    }
  });

  it('a broken file is refused with its line and field', async () => {
    const broken = await route('broken');
    expect(broken.kind).toBe('invalid');
    expect(broken.kind === 'invalid' && broken.error.message).toBe(
      '.raibid.yml:2: runs-on: must be "cpu" or "gpu"',
    );
  });
});
