import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './tools.js';

/** What the stand-in commands (k3s-standins.mjs) report about the machine. */
export interface MachineState {
  uid: number;
  machine: string;
  dockerDaemon: boolean;
  registry: { running: boolean; image: string; repositories: string[] } | null;
  volume: boolean;
  listening: number[];
  sysctl: Record<string, number>;
  freeKiB: number;
  k3s: { version: string; active: boolean } | null;
  cluster: {
    up: boolean;
    unauthorized: boolean;
    nodeReady: boolean;
    namespaces: string[];
    /** Secret data: key -> base64 value. */
    secret: Record<string, string> | null;
    kedaEstablished: boolean;
    kedaHelmChart: boolean;
    /** The GPU pool: HelmChart nvidia-device-plugin applied, and the node's allocatable nvidia.com/gpu. */
    gpu?: { devicePlugin: boolean; allocatable: number };
  };
}

/** A fresh amd64/arm64 Debian-like machine: Docker running, nothing of k3s yet. */
export function freshMachine(): MachineState {
  return {
    uid: 0,
    machine: 'aarch64',
    dockerDaemon: true,
    registry: null,
    volume: false,
    listening: [],
    sysctl: { 'fs.inotify.max_user_watches': 1048576, 'fs.inotify.max_user_instances': 1024 },
    freeKiB: 200 * 1024 * 1024,
    k3s: null,
    cluster: {
      up: false,
      unauthorized: false,
      nodeReady: false,
      namespaces: ['default', 'kube-system', 'kube-public'],
      secret: null,
      kedaEstablished: false,
      kedaHelmChart: false,
    },
  };
}

export interface Call {
  command: string;
  args: string[];
  stdin?: string;
}

export interface ScriptRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The stand-in calls this run made. */
  calls: Call[];
}

const STANDINS = path.join(import.meta.dirname, 'k3s-standins.mjs');
const STANDIN_COMMANDS = [
  'kubectl',
  'docker',
  'k3s',
  'systemctl',
  'curl',
  'ss',
  'sysctl',
  'df',
  'id',
  'uname',
];
// Real tools the scripts use besides those; nothing else is on PATH.
const REAL_COMMANDS = [
  'bash',
  'sh',
  'cat',
  'cp',
  'mv',
  'rm',
  'mkdir',
  'mktemp',
  'chmod',
  'chown',
  'dirname',
  'date',
  'sed',
  'awk',
  'grep',
  'tr',
  'od',
  'base64',
  'head',
  'tail',
  'sort',
  'cut',
  'sleep',
  'getent',
];

function which(name: string): string {
  for (const dir of ['/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
    const candidate = path.join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`${name} is not installed`);
}

/**
 * A machine made of stand-in commands on a PATH of their own, a HOME and a RAIBID_INSTALL_ROOT
 * (where the scripts write /etc/rancher/... and /var/lib/rancher/...) in a temporary directory.
 */
export class Sandbox {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'raibid-k3s-'));
  readonly root = path.join(this.dir, 'root');
  readonly home = path.join(this.dir, 'home');
  readonly bin = path.join(this.dir, 'bin');
  private readonly statePath = path.join(this.dir, 'state.json');
  private readonly logPath = path.join(this.dir, 'calls.jsonl');

  constructor(state: MachineState, options: { without?: string[]; realKubectl?: string } = {}) {
    for (const dir of [this.root, this.home, this.bin]) mkdirSync(dir, { recursive: true });
    this.state = state;
    writeFileSync(this.logPath, '');
    const without = new Set(options.without ?? []);
    for (const name of STANDIN_COMMANDS) {
      // Like the real k3s binary, the stand-in exists only once k3s is installed.
      if (without.has(name) || (name === 'k3s' && state.k3s === null)) continue;
      const wrapper = path.join(this.bin, name);
      writeFileSync(wrapper, `#!/bin/sh\nexec "${process.execPath}" "${STANDINS}" ${name} "$@"\n`);
      chmodSync(wrapper, 0o755);
    }
    for (const name of REAL_COMMANDS) {
      if (!without.has(name)) symlinkSync(which(name), path.join(this.bin, name));
    }
    this.realKubectl = options.realKubectl ?? '/nonexistent/kubectl';
  }

  private readonly realKubectl: string;

  get state(): MachineState {
    return JSON.parse(readFileSync(this.statePath, 'utf8')) as MachineState;
  }

  set state(state: MachineState) {
    writeFileSync(this.statePath, JSON.stringify(state, null, 2));
  }

  /** Runs infra/k3s/<script> with only the sandbox on PATH. */
  run(script: string, args: string[] = [], env: Record<string, string> = {}): ScriptRun {
    const before = this.calls().length;
    const result = spawnSync(which('bash'), [path.join(REPO_ROOT, 'infra', 'k3s', script), ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: this.bin,
        HOME: this.home,
        RAIBID_INSTALL_ROOT: this.root,
        STANDIN_STATE: this.statePath,
        STANDIN_LOG: this.logPath,
        REAL_KUBECTL: this.realKubectl,
        ...env,
      },
    });
    return {
      code: result.status,
      stdout: result.stdout,
      stderr: result.stderr,
      calls: this.calls().slice(before),
    };
  }

  /** Puts an executable shell script on the sandbox's PATH (e.g. a stand-in nvidia-smi). */
  placeScript(name: string, script: string): void {
    writeFileSync(path.join(this.bin, name), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
  }

  /** Puts a stand-in for `command` at `file` under RAIBID_INSTALL_ROOT (e.g. /usr/local/bin/k3s-uninstall.sh). */
  placeStandin(file: string, command: string): void {
    const target = path.join(this.root, file);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, `#!/bin/sh\nexec "${process.execPath}" "${STANDINS}" ${command} "$@"\n`, {
      mode: 0o755,
    });
  }

  calls(): Call[] {
    return readFileSync(this.logPath, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Call);
  }

  /** Paths of every file the scripts wrote under RAIBID_INSTALL_ROOT, relative to it. */
  writtenFiles(): string[] {
    const found: string[] = [];
    const walk = (dir: string) => {
      if (!existsSync(dir)) return;
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(full);
        else found.push(`/${path.relative(this.root, full)}`);
      }
    };
    walk(this.root);
    return found.sort();
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
