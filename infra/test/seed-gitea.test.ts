// `raibid seed-gitea` against a real Gitea (the pinned binary, sqlite, on 127.0.0.1): the admin
// logs in, a token is made and kept, raibid/hello holds examples/hello, the webhook is active and
// signs with the webhook secret; a second run changes nothing; lost or changed state is repaired.
import { createHmac } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type TestApiServer } from './support/apiserver.js';
import { startGitea, type TestGitea } from './support/gitea.js';
import { runRaibid } from './support/raibid-cli.js';
import { find, renderEnvironment } from './support/render.js';
import { needTools, REPO_ROOT } from './support/tools.js';

const tools = needTools('gitea', 'git');
const PASSWORD = 'first-admin-password-0123456789';
const WEBHOOK_SECRET = 'webhook-secret-0123456789abcdef';

interface Delivery {
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** An HTTP endpoint on 127.0.0.1 that records Gitea's webhook deliveries. */
async function startRecorder(): Promise<{ url: string; deliveries: Delivery[]; close(): Promise<void> }> {
  const deliveries: Delivery[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      deliveries.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/gitea`;
  return {
    url,
    deliveries,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe.skipIf(tools.skip)('raibid seed-gitea against a real Gitea', () => {
  let gitea: TestGitea;
  let recorder: Awaited<ReturnType<typeof startRecorder>>;
  let tmp: string;
  let tokenFile: string;
  let password = PASSWORD;

  const seed = (...args: string[]) =>
    runRaibid(['seed-gitea', '--token-file', tokenFile, '--webhook-url', recorder.url, ...args], {
      GITEA_URL: gitea.url,
      RAIBID_GITEA_ADMIN_PASSWORD: password,
      GITEA_WEBHOOK_SECRET: WEBHOOK_SECRET,
    });
  const api = async (method: string, urlPath: string, body?: unknown) => {
    const basic = Buffer.from(`raibid:${password}`).toString('base64');
    const response = await fetch(`${gitea.url}/api/v1${urlPath}`, {
      method,
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  };
  const mainSha = async () =>
    (await api('GET', '/repos/raibid/hello/git/refs/heads/main')).body[0].object.sha;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'raibid-seed-'));
    tokenFile = path.join(tmp, 'gitea-token');
    recorder = await startRecorder();
    gitea = await startGitea(tools.path.gitea!);
  });
  afterAll(async () => {
    await gitea?.stop();
    await recorder?.close();
    await rm(tmp, { recursive: true, force: true });
  });

  it('says how to create the admin when it cannot log in (exit 2)', async () => {
    const result = await seed();
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('the Gitea admin raibid cannot log in with gitea-admin-password');
    expect(result.stderr).toContain('kubectl -n raibid-system logs sts/gitea');
  });

  it('first run: creates the token, the repository with examples/hello, and an active webhook', async () => {
    await gitea.createAdmin(PASSWORD);
    const result = await seed();
    expect(result.stderr).toContain(`Gitea 1.26.0 at ${gitea.url}`);
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines.map((line) => line.replace(/ \(.*\)$/, ''))).toEqual([
      'admin raibid: already there',
      'token: created',
      'repository raibid/hello: created',
      'sample code on main: created',
      `webhook -> ${recorder.url}: created`,
      `seeded Gitea at ${gitea.url}: 4 change(s)`,
    ]);
    expect(result.stdout + result.stderr).not.toContain((await readFile(tokenFile, 'utf8')).trim());

    // The token: in the file only (0600), and Gitea accepts it for the admin.
    expect((await stat(tokenFile)).mode & 0o777).toBe(0o600);
    const token = (await readFile(tokenFile, 'utf8')).trim();
    const me = await fetch(`${gitea.url}/api/v1/user`, { headers: { authorization: `token ${token}` } });
    expect(((await me.json()) as { login: string }).login).toBe('raibid');

    // The repository is public and main holds the sample's files (Gitea takes in a push in the
    // background: the repository stops being "empty" a moment later).
    let repo = await api('GET', '/repos/raibid/hello');
    for (let i = 0; i < 300 && repo.body.empty; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      repo = await api('GET', '/repos/raibid/hello');
    }
    expect(repo.body).toMatchObject({ private: false, empty: false, default_branch: 'main' });
    const pipeline = await fetch(`${gitea.url}/raibid/hello/raw/branch/main/.raibid.yml`);
    expect(await pipeline.text()).toBe(
      await readFile(path.join(REPO_ROOT, 'examples/hello/.raibid.yml'), 'utf8'),
    );

    // The webhook: type gitea, json, push + pull requests, ACTIVE (Gitea's default is inactive).
    const hooks = await api('GET', '/repos/raibid/hello/hooks');
    expect(hooks.body).toHaveLength(1);
    expect(hooks.body[0]).toMatchObject({
      type: 'gitea',
      active: true,
      config: { url: recorder.url, content_type: 'json' },
    });
    expect(hooks.body[0].events).toEqual(
      expect.arrayContaining(['push', 'pull_request', 'pull_request_sync']),
    );
  });

  it('the webhook signs its deliveries with the webhook secret', async () => {
    const [hook] = (await api('GET', '/repos/raibid/hello/hooks')).body;
    expect((await api('POST', `/repos/raibid/hello/hooks/${hook.id}/tests`)).status).toBe(204);
    for (let i = 0; i < 100 && recorder.deliveries.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const [delivery] = recorder.deliveries;
    expect(delivery, 'Gitea delivered the test push').toBeDefined();
    expect(delivery!.headers['x-gitea-event']).toBe('push');
    const expected = createHmac('sha256', WEBHOOK_SECRET).update(delivery!.body).digest('hex');
    expect(delivery!.headers['x-gitea-signature']).toBe(expected);
  });

  it('second run: changes nothing and says so', async () => {
    const hooks = async () =>
      ((await api('GET', '/repos/raibid/hello/hooks')).body as { events: string[] }[]).map((hook) => ({
        ...hook,
        events: [...hook.events].sort(),
      }));
    const before = { sha: await mainSha(), hooks: await hooks() };
    const token = await readFile(tokenFile, 'utf8');
    const result = await seed();
    expect(result.code).toBe(0);
    expect(
      result.stdout
        .trim()
        .split('\n')
        .map((line) => line.replace(/ \(.*\)$/, '')),
    ).toEqual([
      'admin raibid: already there',
      'token: already there',
      'repository raibid/hello: already there',
      'sample code on main: already there',
      `webhook -> ${recorder.url}: already there`,
      'nothing changed: Gitea was seeded already',
    ]);
    expect(await mainSha()).toBe(before.sha);
    expect(await hooks()).toEqual(before.hooks);
    expect(await readFile(tokenFile, 'utf8')).toBe(token);
    const tokens = (await api('GET', '/users/raibid/tokens')).body as { name: string }[];
    expect(tokens.map((t) => t.name)).toEqual(['raibid-ci']);
  });

  it('repairs what changed: a lost token, a deactivated webhook, a new sample, a rotated password', async () => {
    const oldToken = (await readFile(tokenFile, 'utf8')).trim();
    await rm(tokenFile);
    const [hook] = (await api('GET', '/repos/raibid/hello/hooks')).body;
    await api('PATCH', `/repos/raibid/hello/hooks/${hook.id}`, { active: false });
    const oldSha = await mainSha();
    const sample = path.join(tmp, 'sample');
    await rm(sample, { recursive: true, force: true });
    await cp(path.join(REPO_ROOT, 'examples/hello'), sample, { recursive: true });
    await writeFile(path.join(sample, 'NOTES.md'), 'changed\n');

    const result = await seed('--sample', sample);
    expect(result.code).toBe(0);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((line) => line.replace(/ \(.*\)$/, ''));
    expect(lines).toEqual([
      'admin raibid: already there',
      'token: created',
      'repository raibid/hello: already there',
      'sample code on main: updated',
      `webhook -> ${recorder.url}: updated`,
      `seeded Gitea at ${gitea.url}: 3 change(s)`,
    ]);
    // The lost token was replaced (Gitea keeps one raibid-ci token) and no longer works.
    const tokens = (await api('GET', '/users/raibid/tokens')).body as { name: string }[];
    expect(tokens.map((t) => t.name)).toEqual(['raibid-ci']);
    const old = await fetch(`${gitea.url}/api/v1/user`, { headers: { authorization: `token ${oldToken}` } });
    expect(old.status).toBe(401);
    // A fast-forward on top of the old main, never a force push.
    const commit = await api('GET', `/repos/raibid/hello/git/commits/${await mainSha()}`);
    expect(commit.body.parents.map((p: { sha: string }) => p.sha)).toEqual([oldSha]);
    expect((await api('GET', '/repos/raibid/hello/hooks')).body[0].active).toBe(true);

    // secrets.sh --rotate gitea-admin-password: the stored token sets the new password.
    password = 'rotated-admin-password-9876543210';
    const rotated = await seed('--sample', sample);
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toContain('admin raibid: updated (password set to gitea-admin-password)');
    expect((await api('GET', '/user')).status).toBe(200);
  });

  it('--json prints the steps', async () => {
    const result = await runRaibid(
      ['--json', 'seed-gitea', '--token-file', tokenFile, '--webhook-url', recorder.url],
      { GITEA_URL: gitea.url, RAIBID_GITEA_ADMIN_PASSWORD: password, GITEA_WEBHOOK_SECRET: WEBHOOK_SECRET },
    );
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({ gitea: gitea.url, version: '1.26.0', changed: true });
    // The sample dir differs from the last run's --sample: main is updated back to examples/hello.
    expect(report.steps.map((s: { step: string; result: string }) => `${s.step}: ${s.result}`)).toEqual([
      'admin raibid: already there',
      'token: already there',
      'repository raibid/hello: already there',
      'sample code on main: updated',
      `webhook -> ${recorder.url}: already there`,
    ]);
  });

  it('says what to do when Gitea is not there (exit 3) or a secret is missing (exit 2)', async () => {
    const closed = await new Promise<number>((resolve) => {
      const probe = http.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const down = await runRaibid(['seed-gitea', '--token-file', tokenFile], {
      GITEA_URL: `http://127.0.0.1:${closed}`,
      RAIBID_GITEA_ADMIN_PASSWORD: password,
      GITEA_WEBHOOK_SECRET: WEBHOOK_SECRET,
    });
    expect(down.code).toBe(3);
    expect(down.stderr).toContain(`cannot reach Gitea at http://127.0.0.1:${closed} (ECONNREFUSED)`);

    const noKube = await runRaibid(['seed-gitea', '--token-file', tokenFile], {
      GITEA_URL: gitea.url,
      GITEA_WEBHOOK_SECRET: WEBHOOK_SECRET,
      HOME: tmp,
      KUBECONFIG: path.join(tmp, 'missing-kubeconfig'),
    });
    expect(noKube.code).toBe(2);
    expect(noKube.stderr).toContain('cannot read the kubeconfig');
  });
});

const withKube = needTools('gitea', 'git', 'tk', 'etcd', 'kube-apiserver');

describe.skipIf(withKube.skip)(
  'raibid seed-gitea with Secret raibid-secrets in a real kube-apiserver',
  () => {
    const NS = 'raibid-system';
    let gitea: TestGitea;
    let api: TestApiServer;
    let recorder: Awaited<ReturnType<typeof startRecorder>>;
    let deploymentObject: unknown;
    const seed = () =>
      runRaibid(['seed-gitea', '--webhook-url', recorder.url], {
        GITEA_URL: gitea.url,
        KUBECONFIG: api.kubeconfig,
      });
    const secretData = async (): Promise<Record<string, string>> => {
      const secret = await api.request('GET', `/api/v1/namespaces/${NS}/secrets/raibid-secrets`);
      return Object.fromEntries(
        Object.entries(secret.body.data as Record<string, string>).map(([k, v]) => [
          k,
          Buffer.from(v, 'base64').toString(),
        ]),
      );
    };
    const deployment = async () =>
      (await api.request('GET', `/apis/apps/v1/namespaces/${NS}/deployments/raibid-server`)).body;

    beforeAll(async () => {
      recorder = await startRecorder();
      const objects = await renderEnvironment(withKube.path.tk!, 'local');
      [gitea, api] = await Promise.all([
        startGitea(withKube.path.gitea!),
        startApiServer({ kubeApiserver: withKube.path['kube-apiserver']!, etcd: withKube.path.etcd! }),
      ]);
      expect((await api.request('POST', '/api/v1/namespaces', find(objects, 'Namespace', NS))).status).toBe(
        201,
      );
      await gitea.createAdmin(PASSWORD);
      // The rendered Deployment, created after the first seed (which finds none to restart).
      deploymentObject = find(objects, 'Deployment', 'raibid-server');
    });
    afterAll(async () => {
      await gitea?.stop();
      await api?.stop();
      await recorder?.close();
    });

    it('without the Secret: says to run infra/k3s/secrets.sh (exit 2)', async () => {
      const result = await seed();
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`Secret ${NS}/raibid-secrets does not exist: run infra/k3s/secrets.sh`);
    });

    it('stores the token in the Secret, restarts raibid-server only when the token changed', async () => {
      // As infra/k3s/secrets.sh creates it.
      const b64 = (value: string) => Buffer.from(value).toString('base64');
      const created = await api.request('POST', `/api/v1/namespaces/${NS}/secrets`, {
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'Opaque',
        metadata: { name: 'raibid-secrets', namespace: NS },
        data: {
          'api-token': b64('api-token-value'),
          'webhook-secret': b64(WEBHOOK_SECRET),
          'gitea-admin-password': b64(PASSWORD),
          'gitea-token': '',
        },
      });
      expect(created.status).toBe(201);

      const first = await seed();
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout).toContain(`token: created (stored in ${NS}/raibid-secrets (gitea-token))`);
      expect(first.stdout).toContain(
        'raibid-server: skipped (not deployed yet; it reads the token when it starts)',
      );
      const data = await secretData();
      expect(data).toMatchObject({ 'api-token': 'api-token-value', 'webhook-secret': WEBHOOK_SECRET });
      const me = await fetch(`${gitea.url}/api/v1/user`, {
        headers: { authorization: `token ${data['gitea-token']}` },
      });
      expect(((await me.json()) as { login: string }).login).toBe('raibid');
      expect(first.stdout + first.stderr).not.toContain(data['gitea-token']);

      // Deployed now; the token is lost from the Secret: a new one, and the server restarted.
      expect(
        (await api.request('POST', `/apis/apps/v1/namespaces/${NS}/deployments`, deploymentObject)).status,
      ).toBe(201);
      const before = await deployment();
      const secret = (await api.request('GET', `/api/v1/namespaces/${NS}/secrets/raibid-secrets`)).body;
      secret.data['gitea-token'] = '';
      expect(
        (await api.request('PUT', `/api/v1/namespaces/${NS}/secrets/raibid-secrets`, secret)).status,
      ).toBe(200);
      const second = await seed();
      expect(second.code, second.stderr).toBe(0);
      expect(second.stdout).toContain('token: created');
      expect(second.stdout).toContain('raibid-server: restarted (to read the new GITEA_TOKEN)');
      expect((await secretData())['gitea-token']).not.toBe(data['gitea-token']);
      const restarted = await deployment();
      expect(restarted.metadata.generation).toBe(before.metadata.generation + 1);
      expect(restarted.spec.template.metadata.annotations).toHaveProperty(
        'kubectl.kubernetes.io/restartedAt',
      );

      // Nothing changed: no new token, no restart.
      const third = await seed();
      expect(third.code, third.stderr).toBe(0);
      expect(third.stdout).toContain('nothing changed: Gitea was seeded already');
      expect((await deployment()).metadata.generation).toBe(restarted.metadata.generation);
    });
  },
);
