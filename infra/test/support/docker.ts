// A private Docker engine for one test file: Debian's dockerd with its own data root, exec root
// and socket under a temp dir, no bridge and no iptables (containers use --network host or none),
// and the containerd that dockerd starts for itself. Builds use the classic builder (the Debian
// CLI has no buildx), exactly as `docker build` of the project's Dockerfiles on a user's machine
// minus BuildKit's extras, which the Dockerfiles therefore do not use.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { type CommandOptions, type CommandResult, runCommand } from './command.js';

export interface DockerDaemon {
  /** DOCKER_HOST of this engine: unix://<dir>/docker.sock */
  host: string;
  /** The socket of the containerd that dockerd started (for `ctr --address`). */
  containerdSocket: string;
  /** Runs the docker CLI against this engine. */
  docker(args: string[], options?: CommandOptions): Promise<CommandResult>;
  /** What dockerd printed so far (for failure messages). */
  output(): string;
  /** Stops dockerd (and with it its containerd) by PID and deletes its data. */
  stop(): Promise<void>;
}

export interface StartDockerOptions {
  /** dockerd binary; default `dockerd` from PATH (Debian's docker.io). */
  dockerd?: string;
  /** docker CLI binary; default `docker` from PATH. */
  docker?: string;
}

function ping(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const request = http.get({ socketPath: socket, path: '/_ping', timeout: 1000 }, (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    });
    request.once('error', () => resolve(false));
    request.once('timeout', () => {
      request.destroy();
      resolve(false);
    });
  });
}

/**
 * Unmounts whatever is still mounted under `dir` (deepest first): dockerd leaves its
 * exec-root/netns/default namespace mount behind, which makes deleting the dir fail with EBUSY.
 */
async function unmountUnder(dir: string): Promise<void> {
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
  const mounts = mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point?.startsWith(`${dir}/`) === true)
    .sort((a, b) => b.length - a.length);
  for (const point of mounts) await runCommand('umount', [point], { allowFailure: true });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function startDocker(options: StartDockerOptions = {}): Promise<DockerDaemon> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'raibid-docker-'));
  const socket = path.join(dir, 'docker.sock');
  const execRoot = path.join(dir, 'exec');
  const child = spawn(
    options.dockerd ?? 'dockerd',
    [
      '--data-root',
      path.join(dir, 'data'),
      '--exec-root',
      execRoot,
      '--pidfile',
      path.join(dir, 'dockerd.pid'),
      '--host',
      `unix://${socket}`,
      // No bridge, no NAT, no iptables rules: containers get the host's loopback or no network.
      '--bridge=none',
      '--iptables=false',
      '--ip-masq=false',
      '--storage-driver',
      'overlay2',
      // The hard nofile limit here is 20000 and cannot be raised (no CAP_SYS_RESOURCE).
      '--default-ulimit',
      'nofile=20000:20000',
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const failedToStart = new Promise<never>((_, reject) => {
    child.once('error', (error) =>
      reject(new Error(`cannot start dockerd (${error.message}); install it: apt-get install docker.io`)),
    );
    child.once('exit', (code) => reject(new Error(`dockerd exited with ${code}:\n${output}`)));
  });
  failedToStart.catch(() => {}); // only awaited during start-up

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited(child);
      clearTimeout(killer);
    }
    await unmountUnder(dir);
    await rm(dir, { recursive: true, force: true });
  };

  const ready = (async () => {
    for (let i = 0; i < 600; i++) {
      if (await ping(socket)) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`dockerd did not answer on ${socket} within 60 s:\n${output}`);
  })();
  try {
    await Promise.race([ready, failedToStart]);
  } catch (error) {
    await stop();
    throw error;
  }

  const host = `unix://${socket}`;
  const cli = options.docker ?? 'docker';
  return {
    host,
    containerdSocket: path.join(execRoot, 'containerd', 'containerd.sock'),
    docker: (args, commandOptions = {}) =>
      runCommand(cli, args, {
        ...commandOptions,
        env: { ...process.env, DOCKER_HOST: host, DOCKER_BUILDKIT: '0', ...commandOptions.env },
      }),
    output: () => output,
    stop,
  };
}

export interface BuildOptions {
  /** The build context (the repository root for the project's images). */
  context: string;
  /** Path of the Dockerfile, relative to the context or absolute. */
  dockerfile: string;
  tag: string;
  target?: string;
}

export interface BuildResult {
  /** The classic builder's step-by-step output ("Step 3/20 : RUN ...", " ---> Using cache"). */
  output: string;
  seconds: number;
}

/**
 * `docker build` with the classic builder. `--network host` because this engine has no bridge:
 * RUN steps reach apt and the npm registry through the host's network.
 */
export async function buildImage(daemon: DockerDaemon, options: BuildOptions): Promise<BuildResult> {
  const started = performance.now();
  const args = ['build', '--network', 'host', '--file', options.dockerfile, '--tag', options.tag];
  if (options.target) args.push('--target', options.target);
  args.push(options.context);
  const result = await daemon.docker(args, { cwd: options.context });
  return { output: result.stdout + result.stderr, seconds: (performance.now() - started) / 1000 };
}

/**
 * The steps of a classic build, each with whether it came from the cache:
 * "Step 5/21 : RUN pnpm fetch" followed by " ---> Using cache" (or " ---> Running in ...").
 */
export function buildSteps(output: string): { instruction: string; cached: boolean }[] {
  const steps: { instruction: string; cached: boolean }[] = [];
  for (const line of output.split('\n')) {
    const step = /^Step \d+\/\d+ : (.*)$/.exec(line);
    if (step) steps.push({ instruction: step[1]!, cached: false });
    else if (line.trim() === '---> Using cache' && steps.length > 0) steps[steps.length - 1]!.cached = true;
  }
  return steps;
}

/** Size of a local image in bytes, as `docker image ls` reports it (all layers, uncompressed). */
export async function imageSize(daemon: DockerDaemon, tag: string): Promise<number> {
  const result = await daemon.docker(['image', 'inspect', '--format', '{{.Size}}', tag]);
  return Number(result.stdout.trim());
}
