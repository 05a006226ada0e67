// The two images, built for real from the repository root with the Docker engine (classic
// builder), pushed to a local registry and pulled back with containerd's ctr as k3s will, then
// run against a Redis and a git server on the host: the server answers /health and /ready as
// uid 1000 on a read-only root fs and stops cleanly on SIGTERM; the agent takes one job to
// `succeeded`; a one-line source change rebuilds on top of the cached dependency stage.
// Times and sizes are printed as measurements (docs/deploy.md, "Images"); none is asserted.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, copyFile, cp, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis, JobQueue, JobStore, LogStore } from '../../packages/common/src/index.js';
import {
  createRepo,
  type GitHttpServer,
  startGitHttpServer,
  waitFor,
} from '../../packages/common/test/support/index.js';
import { freePort } from '../../packages/common/test/support/ports.js';
import { runCommand } from './support/command.js';
import { buildImage, buildSteps, type DockerDaemon, imageSize, startDocker } from './support/docker.js';
import { startTcpRedis, type TcpRedis } from './support/redis-tcp.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { baseImageOf, makeStandinBase } from './support/standin-base.js';
import { needTools, REPO_ROOT } from './support/tools.js';

const tools = needTools('dockerd', 'docker', 'docker-registry', 'debootstrap', 'ctr', 'redis-server', 'git');

const SERVER = 'raibid-server:test';
const SERVER_DEV = 'raibid-server:dev-test';
const AGENT = 'raibid-agent:test';
const MB = 1024 * 1024;

function measure(what: string, value: string): void {
  console.log(`[measurement] ${what}: ${value}`);
}

/**
 * A copy of the build context: the repository's files as git sees them (tracked and new, not
 * ignored) plus the host-built server bundle the dev target copies. Builds run on the copy so the
 * one-line change below never touches the working tree.
 */
async function copyContext(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'raibid-image-context-'));
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  })
    .split('\0')
    .filter((file) => file !== '' && existsSync(path.join(REPO_ROOT, file)));
  for (const file of files) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await copyFile(path.join(REPO_ROOT, file), path.join(dir, file));
  }
  const bundle = path.join(REPO_ROOT, 'packages/server/dist');
  if (!existsSync(path.join(bundle, 'main.js'))) {
    execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: REPO_ROOT, stdio: 'ignore' });
  }
  await cp(bundle, path.join(dir, 'packages/server/dist'), { recursive: true });
  return dir;
}

describe.skipIf(tools.skip)('images (Dockerfile.server, Dockerfile.agent)', () => {
  let context: string;
  let docker: DockerDaemon;
  let registry: TestRegistry;
  let redis: TcpRedis;
  let git: GitHttpServer;
  let reposDir: string;
  let base: string;

  beforeAll(async () => {
    context = await copyContext();
    reposDir = await mkdtemp(path.join(os.tmpdir(), 'raibid-image-repos-'));
    [docker, registry, redis, git] = await Promise.all([
      startDocker({ dockerd: tools.path.dockerd, docker: tools.path.docker }),
      startRegistry(tools.path['docker-registry']),
      startTcpRedis(),
      startGitHttpServer({ root: reposDir }),
    ]);
    base = await baseImageOf(path.join(context, 'Dockerfile.server'));
    let started = performance.now();
    await makeStandinBase(docker, base);
    measure('stand-in base image (import + build)', `${((performance.now() - started) / 1000).toFixed(1)} s`);

    const serverBuild = await buildImage(docker, { context, dockerfile: 'Dockerfile.server', tag: SERVER });
    measure('raibid-server cold build (empty cache)', `${serverBuild.seconds.toFixed(1)} s`);
    const agentBuild = await buildImage(docker, { context, dockerfile: 'Dockerfile.agent', tag: AGENT });
    measure(
      'raibid-agent build (dependency stage shared with the server)',
      `${agentBuild.seconds.toFixed(1)} s`,
    );
    started = performance.now();
    await buildImage(docker, { context, dockerfile: 'Dockerfile.server', tag: SERVER_DEV, target: 'dev' });
    measure('raibid-server dev target', `${((performance.now() - started) / 1000).toFixed(1)} s`);

    const baseSize = await imageSize(docker, base);
    for (const image of [SERVER, AGENT]) {
      const size = await imageSize(docker, image);
      measure(
        `${image.split(':')[0]} size`,
        `${(size / MB).toFixed(0)} MB uncompressed, of which ${((size - baseSize) / MB).toFixed(0)} MB on top of the base`,
      );
    }
    measure(`stand-in ${base} size`, `${(baseSize / MB).toFixed(0)} MB`);
    const debs = async (image: string) => {
      const list = await docker.docker([
        'run',
        '--rm',
        '--network',
        'none',
        '--entrypoint',
        'dpkg-query',
        image,
        '-W',
        '-f',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax
        '${Installed-Size} ${Package}\\n',
      ]);
      return new Map(
        list.stdout
          .trim()
          .split('\n')
          .map((line) => [line.split(' ')[1]!, Number(line.split(' ')[0])]),
      );
    };
    const inBase = await debs(base);
    const added = [...(await debs(AGENT))].filter(([name]) => !inBase.has(name)).sort((a, b) => b[1] - a[1]);
    measure(
      `raibid-agent Debian packages added (${added.length}, ${(added.reduce((sum, [, kb]) => sum + kb, 0) / 1024).toFixed(0)} MB installed), largest`,
      added
        .slice(0, 15)
        .map(([name, kb]) => `${name} ${(kb / 1024).toFixed(1)} MB`)
        .join(', '),
    );
  });

  afterAll(async () => {
    await Promise.allSettled([docker?.stop(), registry?.stop(), redis?.stop(), git?.stop()]);
    await Promise.allSettled([
      context && rm(context, { recursive: true, force: true }),
      reposDir && rm(reposDir, { recursive: true, force: true }),
    ]);
  });

  it('build from one Node LTS slim base pinned by tag, with pnpm as package.json pins it', async () => {
    expect(base).toMatch(/^node:\d+-(bookworm|trixie)-slim$/);
    expect(await baseImageOf(path.join(context, 'Dockerfile.agent'))).toBe(base);
    const packageManager = JSON.parse(
      await readFile(path.join(context, 'package.json'), 'utf8'),
    ).packageManager;
    for (const file of ['Dockerfile.server', 'Dockerfile.agent']) {
      const text = await readFile(path.join(context, file), 'utf8');
      expect(packageManager).toBe(`pnpm@${/^ARG PNPM_VERSION=(\S+)$/m.exec(text)?.[1]}`);
    }
  });

  it('runs the server as uid 1000 on a read-only root fs: /health, /ready, healthcheck, then exit 0 on SIGTERM', async () => {
    const [port, metricsPort] = [await freePort(), await freePort()];
    const name = 'raibid-server-test';
    await docker.docker([
      'run',
      '--detach',
      '--name',
      name,
      '--network',
      'host',
      '--read-only',
      '--tmpfs',
      '/tmp',
      '--user',
      '1000:1000',
      '--cap-drop',
      'ALL',
      '--security-opt',
      'no-new-privileges',
      '--health-interval',
      '1s',
      '--env',
      `REDIS_URL=${redis.url}`,
      '--env',
      'HOST=127.0.0.1',
      '--env',
      `PORT=${port}`,
      '--env',
      `METRICS_PORT=${metricsPort}`,
      SERVER,
    ]);
    try {
      const origin = `http://127.0.0.1:${port}`;
      const health = await waitFor(
        'the server container to answer /health',
        async () => {
          const response = await fetch(`${origin}/health`).catch(() => null);
          return response?.status === 200 ? response.json() : null;
        },
        30_000,
      );
      expect(health).toEqual({ status: 'ok' });
      const ready = await waitFor(
        '/ready to be 200',
        async () => ((await fetch(`${origin}/ready`)).status === 200 ? true : null),
        30_000,
      );
      expect(ready).toBe(true);
      expect((await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).status).toBe(200);
      const page = await fetch(`${origin}/`);
      expect([page.status, page.headers.get('content-type')]).toEqual([
        200,
        expect.stringMatching(/^text\/html/),
      ]);

      const inside = async (...command: string[]) =>
        (await docker.docker(['exec', name, ...command])).stdout.trim();
      expect(await inside('id', '-u')).toBe('1000');
      expect(await inside('cat', '/proc/1/cmdline')).toMatch(/^\/usr\/bin\/tini\0--\0node\0/);
      expect(await inside('tar', '--version')).toMatch(/GNU tar/);
      const write = await docker.docker(['exec', name, 'touch', '/app/x'], { allowFailure: true });
      expect(write.stderr).toMatch(/Read-only file system/);
      expect(await inside('sh', '-c', 'touch /tmp/x && echo writable')).toBe('writable');
      const healthy = await waitFor(
        'the HEALTHCHECK to report healthy',
        async () => {
          const status = await docker.docker(['inspect', '--format', '{{.State.Health.Status}}', name]);
          return status.stdout.trim() === 'healthy' ? true : null;
        },
        30_000,
      );
      expect(healthy).toBe(true);

      const started = performance.now();
      await docker.docker(['stop', '--time', '20', name]); // the image's STOPSIGNAL, then SIGKILL after 20 s
      measure('raibid-server stop on SIGTERM', `${((performance.now() - started) / 1000).toFixed(2)} s`);
      const state = await docker.docker([
        'inspect',
        '--format',
        '{{.State.ExitCode}} {{.State.OOMKilled}}',
        name,
      ]);
      expect(state.stdout.trim()).toBe('0 false');
      const logs = await docker.docker(['logs', name]);
      expect(logs.stdout).toContain('"msg":"stopped"');
    } catch (error) {
      const logs = await docker.docker(['logs', name], { allowFailure: true });
      const state = await docker.docker(['inspect', '--format', '{{json .State}}', name], {
        allowFailure: true,
      });
      throw new Error(
        `${(error as Error).message}\ncontainer state: ${state.stdout}\nlogs:\n${logs.stdout}${logs.stderr}`,
      );
    }
    await docker.docker(['rm', name]);
  });

  it('runs the agent as uid 1000: it takes one job from the host Redis to succeeded with the build tools', async () => {
    const client = createRedis(redis.url);
    try {
      const store = new JobStore(client);
      const queue = new JobQueue(client, store);
      await queue.ensureGroup();
      const repo = await createRepo(reposDir, 'tools', {
        // sed, not head: head may close the pipe first, and the writer's SIGPIPE (exit 141)
        // fails the step under bash -o pipefail.
        '.raibid.yml': [
          'version: 1',
          'steps:',
          '  - name: tools',
          '    run: |',
          '      echo "uid=$(id -u) bash=$BASH_VERSION"',
          '      git --version && ssh -V && curl --version | sed -n 1p && python3 --version && node --version',
          '      printf "int main(void) { return 0; }" > t.c && gcc -o t t.c && ./t && make --version | sed -n 1p',
          '',
        ].join('\n'),
      });
      const job = await queue.enqueue({
        repo: { owner: 'test', name: repo.name, cloneUrl: git.url(repo.name) },
        ref: repo.branch,
        sha: null,
        trigger: 'api',
        env: {},
      });
      const run = await docker.docker(
        [
          'run',
          '--rm',
          '--network',
          'host',
          '--user',
          '1000:1000',
          '--env',
          `REDIS_URL=${redis.url}`,
          '--env',
          'AGENT_IDLE_TIMEOUT=30s',
          '--env',
          'HOSTNAME=agent-image-test',
          AGENT,
        ],
        { allowFailure: true },
      );
      const finished = await store.get(job.id);
      const lines = (await new LogStore(client).read(job.id, 0, 1000)).map((event) => event.line);
      expect(
        { code: run.code, status: finished?.status },
        `${run.stdout}\n${run.stderr}\n${lines.join('\n')}`,
      ).toEqual({ code: 0, status: 'succeeded' });
      expect(finished?.agent).toBe('agent-image-test');
      expect(lines).toContainEqual(expect.stringMatching(/^uid=1000 bash=5\./));
      expect(lines).toContainEqual(expect.stringMatching(/^git version /));
      expect(lines).toContainEqual(expect.stringMatching(/^Python 3\./));
      expect(lines).toContainEqual(expect.stringMatching(/^GNU Make /));
    } finally {
      client.disconnect();
    }
  });

  it('pushes both images to the local registry; containerd pulls them back over plain HTTP and runs them', async () => {
    const ctr = (...args: string[]) =>
      runCommand(tools.path.ctr!, ['--address', docker.containerdSocket, '--namespace', 'k8s.io', ...args]);
    for (const [image, name] of [
      [SERVER, 'raibid-server'],
      [AGENT, 'raibid-agent'],
    ] as const) {
      const remote = `${registry.address}/${name}:test`;
      await docker.docker(['tag', image, remote]);
      let started = performance.now();
      await docker.docker(['push', remote]);
      measure(`${name} push to the local registry`, `${((performance.now() - started) / 1000).toFixed(1)} s`);
      started = performance.now();
      await ctr('images', 'pull', '--plain-http', remote);
      measure(`${name} pull with ctr`, `${((performance.now() - started) / 1000).toFixed(1)} s`);
      const run = await ctr(
        'run',
        '--rm',
        '--net-host',
        remote,
        `${name}-ctr`,
        'node',
        '-e',
        'console.log(process.getuid(), process.cwd())',
      );
      expect(run.stdout.trim()).toBe('1000 /app');
    }
  });

  it('holds only what runs: no sources, no pnpm, no credentials, no secret in the environment or history', async () => {
    for (const image of [SERVER, AGENT]) {
      const app = image === SERVER ? 'server' : 'agent';
      const listing = await docker.docker([
        'run',
        '--rm',
        '--network',
        'none',
        '--user',
        '0',
        '--entrypoint',
        'sh',
        image,
        '-c',
        `ls -A /app /app/packages /app/packages/${app}; command -v pnpm || echo no-pnpm; find / -xdev \\( -name .npmrc -o -name .git-credentials -o -name .netrc -o -name id_rsa -o -name id_ed25519 \\) -print`,
      ]);
      expect(listing.stdout.trim().split('\n')).toEqual([
        '/app:',
        'node_modules',
        'packages',
        '',
        '/app/packages:',
        app,
        '',
        `/app/packages/${app}:`,
        'dist',
        'node_modules',
        'package.json',
        'no-pnpm',
      ]);
      const config = JSON.parse((await docker.docker(['image', 'inspect', image])).stdout)[0].Config;
      const names = (config.Env as string[]).map((entry) => entry.split('=')[0] ?? '');
      expect(names.filter((name) => /TOKEN|SECRET|PASSWORD|KEY|AUTH/i.test(name))).toEqual([]);
      const history = (await docker.docker(['history', '--no-trunc', '--format', '{{.CreatedBy}}', image]))
        .stdout;
      expect(history).not.toMatch(/_authToken|TOKEN=|SECRET=|PASSWORD=/i);
      expect(config.Labels['org.opencontainers.image.title']).toBe(`raibid-${app}`);
      expect(config.StopSignal).toBe('SIGTERM');
      expect(config.User).toBe('1000:1000');
      expect(config.Entrypoint).toEqual(['/usr/bin/tini', '--']);
    }
  });

  it('the dev target runs the host-built bundle under node --watch, in a dist dir uid 1000 can write', async () => {
    const config = JSON.parse((await docker.docker(['image', 'inspect', SERVER_DEV])).stdout)[0].Config;
    expect(config.Cmd).toEqual(['node', '--watch', '/app/packages/server/dist/main.js']);
    const check = await docker.docker([
      'run',
      '--rm',
      '--network',
      'none',
      '--entrypoint',
      'sh',
      SERVER_DEV,
      '-c',
      'cd /app/packages/server/dist && stat -c %u . main.js && touch main.js new && echo writable && test -f assets/list.html && echo assets',
    ]);
    expect(check.stdout.trim().split('\n')).toEqual(['1000', '1000', 'writable', 'assets']);
  });

  it('a one-line source change rebuilds on top of the cached dependency stage', async () => {
    const marker = `rebuild-${Date.now()}`;
    await appendFile(
      path.join(context, 'packages/server/src/main.ts'),
      `export const imageRebuildMarker = '${marker}';\n`,
    );
    const rebuild = await buildImage(docker, { context, dockerfile: 'Dockerfile.server', tag: SERVER });
    measure('raibid-server rebuild after a one-line source change', `${rebuild.seconds.toFixed(1)} s`);
    const steps = buildSteps(rebuild.output);
    const cached = (instruction: string) =>
      steps.find((step) => step.instruction.startsWith(instruction))?.cached;
    expect(cached('RUN pnpm fetch')).toBe(true);
    expect(cached('RUN pnpm install --offline --frozen-lockfile')).toBe(true);
    expect(cached('RUN rm -rf node_modules packages/*/node_modules')).toBe(true);
    expect(cached('COPY . .')).toBe(false);
    expect(cached('RUN node scripts/build.mjs server')).toBe(false);
    const grep = await docker.docker([
      'run',
      '--rm',
      '--network',
      'none',
      '--entrypoint',
      'grep',
      SERVER,
      '-c',
      marker,
      '/app/packages/server/dist/main.js',
    ]);
    expect(grep.stdout.trim()).toBe('1');
  });
});
