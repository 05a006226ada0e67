import { execFile, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { ApiJob as Job } from '@raibid/common';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../src/dev/redis.js';
import { type ApiStub, apiError, json, sse, startApiStub } from './support/api-stub.js';
import { makeJob, runCli } from './support/cli.js';
import { git, makeRepo, type TestRepo } from './support/git.js';

let stub: ApiStub;
let env: Record<string, string>;

beforeAll(async () => {
  stub = await startApiStub();
  env = { RAIBID_URL: stub.url };
});
afterAll(() => stub.stop());
afterEach(() => {
  stub.routes.clear();
  stub.requests.length = 0;
});

const cli = (args: string[], options: Parameters<typeof runCli>[1] = {}) =>
  runCli(args, { ...options, env: { ...env, ...options.env } });

describe('errors and exit codes', () => {
  it('exits 3 with one line when the server is unreachable', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const result = await cli(['ls'], { env: { RAIBID_URL: url } });
    expect(result.code).toBe(3);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      `raibid: cannot reach the raibid server at ${url} (connection refused); start it with "pnpm dev" or set RAIBID_URL\n`,
    );
  });

  it('exits 2 for an unknown job (404), showing the server message', async () => {
    stub.routes.set('GET /api/v1/jobs/nope', (_req, res) =>
      apiError(res, 404, 'not_found', 'job nope does not exist'),
    );
    const result = await cli(['show', 'nope']);
    expect(result).toEqual({ code: 2, stdout: '', stderr: 'raibid: job nope does not exist\n' });
  });

  it('exits 2 when the server refuses the input, naming the field from details', async () => {
    stub.routes.set('POST /api/v1/jobs', (_req, res) =>
      apiError(res, 400, 'bad_request', 'invalid request body', [
        { path: ['ref'], message: 'is not a valid git ref name' },
      ]),
    );
    const result = await cli(['submit', 'acme/widgets']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('raibid: invalid request body: ref: is not a valid git ref name\n');
  });

  it('exits 3 on 401 and says which variable to set', async () => {
    stub.routes.set('POST /api/v1/jobs', (_req, res) =>
      apiError(res, 401, 'unauthorized', 'missing bearer token'),
    );
    const result = await cli(['submit', 'acme/widgets']);
    expect(result.code).toBe(3);
    expect(result.stderr).toBe("raibid: missing bearer token (set RAIBID_API_TOKEN to the server's token)\n");
  });

  it('exits 3 when a response does not match the contract', async () => {
    stub.routes.set('GET /api/v1/queue', (_req, res) => json(res, 200, { lag: 'many' }));
    const result = await cli(['queue']);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/^raibid: unexpected response from GET \/api\/v1\/queue: lag: .+\n$/);
  });

  it('exits 2 for usage errors, with one line', async () => {
    const unknown = await cli(['lss']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe("raibid: unknown command 'lss' (did you mean ls?)\n");
    const missing = await cli(['show']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe("raibid: missing required argument 'id'\n");
    const badStatus = await cli(['ls', '--status', 'done']);
    expect(badStatus).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/^raibid: --status must be one of queued, /),
    });
    const badUrl = await cli(['ls'], { env: { RAIBID_URL: 'ftp://x' } });
    expect(badUrl).toMatchObject({
      code: 2,
      stderr: 'raibid: RAIBID_URL "ftp://x" must be an http(s) URL\n',
    });
    expect(stub.requests).toHaveLength(0);
  });

  it('reports errors as JSON on stderr with --json', async () => {
    stub.routes.set('GET /api/v1/jobs/nope', (_req, res) =>
      apiError(res, 404, 'not_found', 'job nope does not exist'),
    );
    const result = await cli(['show', 'nope', '--json']);
    expect(result.code).toBe(2);
    expect(JSON.parse(result.stderr)).toEqual({
      error: { code: 'not_found', message: 'job nope does not exist' },
    });
  });

  it('prints help with exit 0', async () => {
    const result = await cli(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Exit codes:');
  });
});

describe('ls and show', () => {
  const jobs: Job[] = [
    makeJob({
      status: 'running',
      repo: {
        owner: 'local',
        name: 'a-rather-long-repository-name',
        cloneUrl: '/srv/a-rather-long-repository-name',
      },
      ref: 'feature/some-long-branch-name',
      startedAt: new Date(Date.now() - 5_000).toISOString(),
      agent: 'raibid-agent-1',
      attempts: 1,
    }),
    makeJob({
      status: 'failed',
      exitCode: 1,
      startedAt: new Date(Date.now() - 50_000).toISOString(),
      finishedAt: new Date(Date.now() - 38_000).toISOString(),
      steps: [
        {
          name: 'test',
          status: 'failed',
          exitCode: 1,
          startedAt: new Date(Date.now() - 50_000).toISOString(),
          finishedAt: new Date(Date.now() - 38_000).toISOString(),
        },
      ],
    }),
  ];

  it('lists jobs as a table and passes filters as query parameters', async () => {
    stub.routes.set('GET /api/v1/jobs', (_req, res) => json(res, 200, { jobs, nextCursor: jobs[1]!.id }));
    const result = await cli(['ls', '--status', 'failed', '--repo', 'acme/widgets', '-n', '2']);
    expect(result.code).toBe(0);
    const query = stub.requests[0]!.query;
    expect(Object.fromEntries(query)).toEqual({ status: 'failed', repo: 'acme/widgets', limit: '2' });
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+STATUS\s+REPO\s+REF\s+SHA\s+TRIGGER\s+CREATED\s+DURATION$/);
    expect(lines[1]).toContain(jobs[0]!.id);
    expect(lines[1]).toContain('local/a-rather-long-repository-name');
    expect(lines[2]).toMatch(/failed\s+acme\/widgets\s+main\s+aaaaaaa\s+api\s+1m ago\s+12s$/);
    expect(result.stderr).toBe(`more: raibid ls --cursor ${jobs[1]!.id}\n`);
  });

  it('fits the table into a narrow terminal by shrinking and dropping columns', async () => {
    stub.routes.set('GET /api/v1/jobs', (_req, res) => json(res, 200, { jobs, nextCursor: null }));
    for (const columns of [100, 72, 60]) {
      const result = await cli(['ls'], { columns });
      const lines = result.stdout.trimEnd().split('\n');
      for (const line of lines) expect(line.length).toBeLessThanOrEqual(columns);
      // The id is never cut: it is what the other commands take.
      expect(lines[1]).toContain(jobs[0]!.id);
    }
    const narrow = (await cli(['ls'], { columns: 60 })).stdout.split('\n')[0]!;
    expect(narrow).not.toContain('TRIGGER');
    expect(narrow).toContain('REPO');
  });

  it('prints the page as JSON with --json', async () => {
    stub.routes.set('GET /api/v1/jobs', (_req, res) => json(res, 200, { jobs, nextCursor: null }));
    const result = await cli(['--json', 'ls']);
    expect(JSON.parse(result.stdout)).toEqual({ jobs, nextCursor: null });
  });

  it('shows a job with its steps and why it failed', async () => {
    const job = jobs[1]!;
    stub.routes.set(`GET /api/v1/jobs/${job.id}`, (_req, res) => json(res, 200, job));
    const result = await cli(['show', job.id]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`job      ${job.id}`);
    expect(result.stdout).toContain('status   failed (exit 1)');
    expect(result.stdout).toContain('reason   step "test" exited 1');
    expect(result.stdout).toMatch(/STEP\s+STATUS\s+EXIT\s+DURATION\ntest\s+failed\s+1\s+12s/);
    const asJson = await cli(['show', job.id, '--json']);
    expect(JSON.parse(asJson.stdout)).toEqual(job);
  });
});

describe('submit', () => {
  let repo: TestRepo;
  beforeAll(async () => {
    repo = await makeRepo({ 'README.md': 'hello\n' }, 'widgets');
  });
  afterAll(() => repo.remove());

  const accept = () =>
    stub.routes.set('POST /api/v1/jobs', (req, res) => {
      const body = JSON.parse(req.body) as { repo: string; ref?: string; sha?: string };
      json(res, 201, makeJob({ ref: body.ref ?? 'main', sha: body.sha ?? null }));
    });

  it('sends owner/name with --ref, --sha and --env, and the token as a bearer header', async () => {
    accept();
    const sha = 'b'.repeat(40);
    const result = await cli(
      ['submit', 'acme/widgets', '--ref', 'dev', '--sha', sha.toUpperCase(), '-e', 'A=1', '-e', 'B=x=y'],
      {
        env: { RAIBID_API_TOKEN: 's3cret' },
      },
    );
    expect(result.code).toBe(0);
    const request = stub.requests[0]!;
    expect(JSON.parse(request.body)).toEqual({
      repo: 'acme/widgets',
      ref: 'dev',
      sha,
      env: { A: '1', B: 'x=y' },
    });
    expect(request.headers.authorization).toBe('Bearer s3cret');
    expect(result.stdout).toMatch(
      /^queued job \S+ for acme\/widgets dev@bbbbbbb\n {2}logs: raibid logs -f \S+\n {2}web: {2}http:\/\/127\.0\.0\.1:\d+\/jobs\/\S+\n$/,
    );
  });

  it('refuses malformed arguments before calling the server', async () => {
    for (const args of [
      ['submit', 'acme/widgets', '--ref', '-x'],
      ['submit', 'acme/widgets', '--sha', 'abc'],
      ['submit', 'acme/widgets', '-e', 'NOEQUALS'],
      ['submit', 'acme/widgets', '--remote'],
    ]) {
      const result = await cli(args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr.split('\n')).toHaveLength(2);
    }
    expect(stub.requests).toHaveLength(0);
  });

  it('submits the current checkout as a local path at its branch and HEAD', async () => {
    accept();
    const result = await cli(['submit', '--json'], { cwd: path.join(repo.dir) });
    expect(result.code).toBe(0);
    expect(JSON.parse(stub.requests[0]!.body)).toEqual({ repo: repo.dir, ref: 'main', sha: repo.sha });
    expect(JSON.parse(result.stdout).sha).toBe(repo.sha);
  });

  it('resolves a relative path argument and notes uncommitted changes', async () => {
    accept();
    await writeFile(path.join(repo.dir, 'README.md'), 'changed\n');
    try {
      const result = await cli(['submit', './widgets'], { cwd: path.dirname(repo.dir) });
      expect(result.code).toBe(0);
      expect(JSON.parse(stub.requests[0]!.body)).toMatchObject({ repo: repo.dir, sha: repo.sha });
      expect(result.stderr).toBe(
        `note: uncommitted changes are not part of the job; it runs HEAD ${repo.sha.slice(0, 7)}\n`,
      );
    } finally {
      await git(repo.dir, 'checkout', '--', 'README.md');
    }
  });

  it("falls back to the checkout's remote when the server refuses local paths", async () => {
    await git(repo.dir, 'remote', 'add', 'origin', 'https://user:pw@git.example.com/acme/widgets.git');
    try {
      stub.routes.set('POST /api/v1/jobs', (req, res) => {
        const body = JSON.parse(req.body) as { repo: string };
        if (body.repo.startsWith('/')) {
          apiError(res, 400, 'bad_request', 'local paths are accepted only by the local stack');
          return;
        }
        json(res, 201, makeJob());
      });
      const result = await cli(['submit'], { cwd: repo.dir });
      expect(result.code).toBe(0);
      expect(stub.requests.map((r) => JSON.parse(r.body).repo)).toEqual([
        repo.dir,
        'https://git.example.com/acme/widgets.git',
      ]);
      expect(result.stderr).toContain('note: the server refused the local path');

      stub.requests.length = 0;
      const remote = await cli(['submit', '--remote'], { cwd: repo.dir });
      expect(remote.code).toBe(0);
      expect(stub.requests.map((r) => JSON.parse(r.body))).toEqual([
        { repo: 'https://git.example.com/acme/widgets.git', ref: 'main', sha: repo.sha },
      ]);
      expect(remote.stderr).toContain('credentials in the remote URL are not sent');
      expect(remote.stderr).toContain('is on no remote branch');
    } finally {
      await git(repo.dir, 'remote', 'remove', 'origin');
    }
  });

  it('says what to do outside a git checkout', async () => {
    const result = await cli(['submit'], { cwd: '/' });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      'raibid: not inside a git checkout; give a repo: raibid submit owner/name | https://host/owner/name.git | /path/to/repo\n',
    );
  });
});

describe('following a job', () => {
  const log = (seq: number, line: string, stream = 'stdout') => ({
    seq,
    ts: new Date().toISOString(),
    stream,
    step: 'test',
    line,
  });

  /**
   * Serves a job's log as SSE: the first connection drops after two lines; the client must come back
   * with Last-Event-ID and get the rest exactly once.
   */
  function serveJob(final: Job): void {
    const queued = { ...final, status: 'queued' as const, finishedAt: null, exitCode: null };
    stub.routes.set('POST /api/v1/jobs', (_req, res) => json(res, 201, queued));
    stub.routes.set(`GET /api/v1/jobs/${final.id}`, (_req, res) => json(res, 200, final));
    stub.routes.set(`GET /api/v1/jobs/${final.id}/logs`, (req, res) => {
      if (req.headers.accept !== 'text/event-stream') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('line 1\nline 2\nline 3\n');
        return;
      }
      const stream = sse(res);
      const after = Number(req.headers['last-event-id'] ?? 0);
      const lines = [log(1, '[raibid] step test', 'system'), log(2, 'line 2'), log(3, 'line 3')];
      if (after === 0) {
        stream.send('status', { ...queued, status: 'running' });
        for (const event of lines.slice(0, 2)) stream.send('log', event, String(event.seq));
        res.socket?.end(); // connection lost mid-job, after what was written
        return;
      }
      for (const event of lines.filter((l) => l.seq > after)) stream.send('log', event, String(event.seq));
      stream.send('status', final);
      stream.send('end', {});
      res.end();
    });
  }

  const finished = (status: Job['status'], extra: Partial<Job> = {}) =>
    makeJob({
      status,
      startedAt: new Date(Date.now() - 3_000).toISOString(),
      finishedAt: new Date().toISOString(),
      ...extra,
    });

  it('submit --wait streams the log, resumes with Last-Event-ID, and exits 0 on success', async () => {
    const job = finished('succeeded', { exitCode: 0 });
    serveJob(job);
    const result = await cli(['submit', 'acme/widgets', '--wait']);
    expect(result.stdout).toBe('[raibid] step test\nline 2\nline 3\n');
    expect(result.code).toBe(0);
    const streams = stub.requests.filter((r) => r.path.endsWith('/logs'));
    expect(streams.map((r) => r.headers['last-event-id'])).toEqual([undefined, '2']);
    expect(result.stderr).toMatch(/^queued job \S+ for acme\/widgets main@aaaaaaa {2}http:\S+\n/);
    expect(result.stderr).toMatch(/raibid: connection lost \(terminated\); reconnecting \(attempt 1\)\n/);
    expect(result.stderr).toMatch(new RegExp(`✔ job ${job.id} succeeded in 3s\n$`));
  });

  it('exits 1 when the job fails, naming the failed step', async () => {
    const job = finished('failed', {
      exitCode: 2,
      steps: [{ name: 'test', status: 'failed', exitCode: 2, startedAt: null, finishedAt: null }],
    });
    serveJob(job);
    const result = await cli(['submit', 'acme/widgets', '-w']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`✘ job ${job.id} failed in 3s: step "test" exited 2\n$`));
  });

  it('--wait --json prints only the final job', async () => {
    const job = finished('cancelled');
    serveJob(job);
    const result = await cli(['submit', 'acme/widgets', '--wait', '--json']);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toEqual(job);
    expect(result.stderr).toBe('');
  });

  it('retry --wait follows the new job', async () => {
    const job = finished('succeeded', { trigger: 'retry', retryOf: 'old' });
    serveJob(job);
    stub.routes.set('POST /api/v1/jobs/old/retry', (_req, res) =>
      json(res, 201, { ...job, status: 'queued' }),
    );
    const result = await cli(['retry', 'old', '--wait']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('[raibid] step test\nline 2\nline 3\n');
  });

  it('logs prints the text log; logs -f --json streams NDJSON events', async () => {
    const job = finished('succeeded');
    serveJob(job);
    const text = await cli(['logs', job.id]);
    expect(text).toEqual({ code: 0, stdout: 'line 1\nline 2\nline 3\n', stderr: '' });
    const follow = await cli(['logs', job.id, '-f', '--json']);
    expect(follow.code).toBe(0);
    const events = follow.stdout
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(events.map((e) => (e.event === 'log' ? e.seq : e.job.status))).toEqual([
      'running',
      1,
      2,
      3,
      'succeeded',
    ]);
  });

  it('Ctrl-C while waiting stops following with exit 130 and says the job keeps running', async () => {
    const job = makeJob();
    stub.routes.set('POST /api/v1/jobs', (_req, res) => json(res, 201, job));
    stub.routes.set(`GET /api/v1/jobs/${job.id}/logs`, (_req, res) => {
      sse(res); // never ends
    });
    const result = await cli(['submit', 'acme/widgets', '--wait'], {
      onInterrupt: (handler) => setTimeout(handler, 200),
    });
    expect(result.code).toBe(130);
    expect(result.stderr).toContain(
      `raibid: stopped following job ${job.id}; it keeps running (stop it with: raibid cancel ${job.id})\n`,
    );
  });
});

describe('cancel, retry, queue, agents', () => {
  it('cancel posts with the token and reports what happens', async () => {
    const job = makeJob({ status: 'running' });
    stub.routes.set(`POST /api/v1/jobs/${job.id}/cancel`, (_req, res) => json(res, 202, job));
    const result = await cli(['cancel', job.id], { env: { RAIBID_API_TOKEN: 't' } });
    expect(result).toEqual({
      code: 0,
      stdout: `cancelling job ${job.id}: its agent stops it within 5 s\n`,
      stderr: '',
    });
    expect(stub.requests[0]!.headers.authorization).toBe('Bearer t');
  });

  it('retry prints the new job', async () => {
    const job = makeJob({ trigger: 'retry', retryOf: 'old' });
    stub.routes.set('POST /api/v1/jobs/old/retry', (_req, res) => json(res, 201, job));
    const result = await cli(['retry', 'old']);
    expect(result.code).toBe(0);
    expect(result.stdout.split('\n')[0]).toBe(`queued job ${job.id} for acme/widgets main@aaaaaaa`);
  });

  it('queue shows the four numbers', async () => {
    stub.routes.set('GET /api/v1/queue', (_req, res) =>
      json(res, 200, { lag: 3, pending: 1, running: 1, agents: 12 }),
    );
    const result = await cli(['queue']);
    expect(result.stdout).toMatch(
      /^lag {6}3 {2}queued jobs no agent has taken yet.*\npending {2}1.*\nrunning {2}1.*\nagents {2}12 .*\n$/,
    );
    expect(JSON.parse((await cli(['queue', '--json'])).stdout)).toEqual({
      lag: 3,
      pending: 1,
      running: 1,
      agents: 12,
    });
  });

  it('agents lists heartbeats, accepting a bare list or {agents}', async () => {
    const agent = {
      name: 'raibid-agent-abc-1',
      jobId: null,
      lastSeen: new Date().toISOString(),
      startedAt: new Date(Date.now() - 120_000).toISOString(),
      pid: 42,
      host: 'box',
    };
    stub.routes.set('GET /api/v1/agents', (_req, res) => json(res, 200, { agents: [agent] }));
    const result = await cli(['agents']);
    expect(result.stdout).toMatch(
      /^NAME\s+JOB\s+LAST SEEN\s+STARTED\s+PID\s+HOST\nraibid-agent-abc-1\s+idle\s+0s ago\s+2m ago\s+42\s+box\n$/,
    );
    stub.routes.set('GET /api/v1/agents', (_req, res) => json(res, 200, [agent]));
    expect(JSON.parse((await cli(['agents', '--json'])).stdout)).toEqual([agent]);
  });
});

describe('the raibid executable', () => {
  it('runs main.ts as a process and exits with the command’s code', async () => {
    stub.routes.set('GET /api/v1/jobs/nope', (_req, res) =>
      apiError(res, 404, 'not_found', 'job nope does not exist'),
    );
    const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
    const error = await promisify(execFile)(process.execPath, ['--import', 'tsx', main, 'show', 'nope'], {
      env: { ...process.env, RAIBID_URL: stub.url, NO_COLOR: '1' },
    }).catch((e: { code: number; stderr: string }) => e);
    expect(error).toMatchObject({ code: 2, stderr: 'raibid: job nope does not exist\n' });
  });

  it('exits quietly when its reader closes the pipe early (raibid ls | head -1)', async () => {
    const now = new Date().toISOString();
    const agents = Array.from({ length: 2_000 }, (_, i) => ({
      name: `agent-${i}`,
      jobId: null,
      lastSeen: now,
      startedAt: now,
      pid: i,
      host: 'box',
    }));
    stub.routes.set('GET /api/v1/agents', (_req, res) => json(res, 200, { agents }));
    const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', main, 'agents', '--json'], {
      env: { ...process.env, RAIBID_URL: stub.url, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });
});
