// Edit-to-live of the server, the way the Tiltfile's live update does it: the server image's
// `dev` target runs the host-built bundle under `node --watch`; an edit is bundled on the host
// by the server-bundle resource's command (`node scripts/build.mjs server`), streamed into the running
// container with `tar | docker exec -i <container> tar -C / -x -f -` (Tilt's
// internal/containerupdate/exec_updater.go), and node restarts on the new bundle.
//
// The edit happens in a copy of the sources, never in the working tree. The times are printed,
// not asserted: only that the edited code answers is.
import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../packages/common/test/support/ports.js';
import { runCommand } from './support/command.js';
import { buildImage, type DockerDaemon, startDocker } from './support/docker.js';
import { startTcpRedis, type TcpRedis } from './support/redis-tcp.js';
import { baseImageOf, makeStandinBase } from './support/standin-base.js';
import { needTools, REPO_ROOT } from './support/tools.js';

const tools = needTools('dockerd', 'docker', 'redis-server');

/** What answers GET /health on the wire (before fastify routes it), and the line that answers. */
const HEALTH_SOURCE = 'packages/server/src/health-fast-path.ts';
const HEALTH_ANSWER = 'response.writeHead(200, [';
const PACKAGES = ['common', 'server', 'agent', 'cli'];

/** The headers of a 200 from /health, or undefined while the server does not answer. */
async function health(url: string): Promise<Headers | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await response.text();
    return response.ok ? response.headers : undefined;
  } catch {
    return undefined;
  }
}

async function poll<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * A copy of the workspace that scripts/build.mjs can bundle: sources and manifests copied, the
 * installed node_modules linked (pnpm's links inside them point at the real packages, which only
 * matters for @raibid/common; the edit is in the server package itself).
 */
async function workspaceCopy(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'raibid-live-update-'));
  await cp(path.join(REPO_ROOT, 'scripts'), path.join(dir, 'scripts'), { recursive: true });
  for (const file of ['package.json', 'tsconfig.json', 'tsconfig.base.json']) {
    await cp(path.join(REPO_ROOT, file), path.join(dir, file));
  }
  await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  for (const name of PACKAGES) {
    const from = path.join(REPO_ROOT, 'packages', name);
    const to = path.join(dir, 'packages', name);
    await mkdir(to, { recursive: true });
    await cp(path.join(from, 'src'), path.join(to, 'src'), { recursive: true });
    await cp(path.join(from, 'package.json'), path.join(to, 'package.json'));
    await symlink(path.join(from, 'node_modules'), path.join(to, 'node_modules'));
  }
  return dir;
}

describe.skipIf(tools.skip)(
  "the server's live update: host bundle, tar into the container, node --watch",
  () => {
    let daemon: DockerDaemon | undefined;
    let redis: TcpRedis | undefined;
    let copy: string | undefined;
    let container: string | undefined;
    let port: number;

    beforeAll(async () => {
      // The dev target copies the host-built bundle, as the Tiltfile's server-bundle makes it.
      await runCommand('node', ['scripts/build.mjs'], { cwd: REPO_ROOT });
      daemon = await startDocker();
      await makeStandinBase(daemon, await baseImageOf(path.join(REPO_ROOT, 'Dockerfile.server')));
      const built = await buildImage(daemon, {
        context: REPO_ROOT,
        dockerfile: 'Dockerfile.server',
        tag: 'raibid-server:live-update',
        target: 'dev',
      });
      console.log(`server dev image built in ${built.seconds.toFixed(1)} s`);
      redis = await startTcpRedis();
      port = await freePort();
      const metricsPort = await freePort();
      const started = await daemon.docker([
        'run',
        '--detach',
        '--network',
        'host',
        '--env',
        `PORT=${port}`,
        '--env',
        `METRICS_PORT=${metricsPort}`,
        '--env',
        'HOST=127.0.0.1',
        '--env',
        `REDIS_URL=${redis.url}`,
        '--env',
        `RAIBID_API_TOKEN=${randomBytes(16).toString('hex')}`,
        'raibid-server:live-update',
      ]);
      container = started.stdout.trim();
      await poll('the server answering /health', () => health(`http://127.0.0.1:${port}/health`), 60_000);
      copy = await workspaceCopy();
    });

    afterAll(async () => {
      // Every step runs even if an earlier one fails, so nothing is left running.
      const errors: unknown[] = [];
      const attempt = async (step: () => Promise<unknown>) => {
        try {
          await step();
        } catch (error) {
          errors.push(error);
        }
      };
      if (daemon && container) await attempt(() => daemon!.docker(['rm', '--force', container!]));
      await attempt(async () => daemon?.stop());
      await attempt(async () => redis?.stop());
      if (copy) await attempt(() => rm(copy!, { recursive: true, force: true }));
      if (errors.length > 0) throw errors[0];
    });

    it('an edit of a server source answers from the running container', async () => {
      const marker = randomBytes(8).toString('hex');
      const route = path.join(copy!, HEALTH_SOURCE);
      const source = await readFile(route, 'utf8');
      expect(source, `${HEALTH_SOURCE} changed: teach this test how it answers /health`).toContain(
        HEALTH_ANSWER,
      );
      const edited = source.replace(HEALTH_ANSWER, `${HEALTH_ANSWER}'x-live-update', '${marker}', `);
      const url = `http://127.0.0.1:${port}/health`;
      expect((await health(url))?.get('x-live-update')).toBeNull();

      const t0 = performance.now();
      await writeFile(route, edited);
      await runCommand('node', ['scripts/build.mjs', 'server'], { cwd: copy! }); // server-bundle's cmd
      const bundled = performance.now();
      // Tilt's sync: the changed files, at their container paths, extracted at / by the container user.
      await runCommand(
        'sh',
        [
          '-c',
          `tar -C "$0" -cf - --transform 's,^packages/server/dist,app/packages/server/dist,' packages/server/dist | docker exec -i "$1" tar -C / -x -f -`,
          copy!,
          container!,
        ],
        { env: { ...process.env, DOCKER_HOST: daemon!.host } },
      );
      const synced = performance.now();
      // The old process answers until node --watch stops it; then nothing until the new one listens.
      let stopped: number | undefined;
      const answered = await poll(
        'the edited /health',
        async () => {
          const headers = await health(url);
          if (headers === undefined) stopped ??= performance.now();
          return headers?.get('x-live-update') === marker ? true : undefined;
        },
        30_000,
      );
      const live = performance.now();

      expect(answered).toBe(true);
      const ms = (a: number, b: number) => Math.round(b - a);
      const down = stopped ?? live;
      console.log(
        `edit-to-live: ${ms(t0, live)} ms (esbuild on the host ${ms(t0, bundled)} ms, ` +
          `tar into the container ${ms(bundled, synced)} ms, old server stopped ${ms(synced, down)} ms later, ` +
          `new one answered ${ms(down, live)} ms after that)`,
      );
    });
  },
);
