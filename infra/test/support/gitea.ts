import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../../packages/common/test/support/ports.js';
import { startProcess, stopProcess, waitUntilReady } from './command.js';
import { TOOLS_BIN } from './tools.js';

const execFileAsync = promisify(execFile);

/** A real Gitea (sqlite, own work dir) on 127.0.0.1, for one test file. */
export interface TestGitea {
  /** http://127.0.0.1:<port> (also its ROOT_URL). */
  url: string;
  /** Runs `gitea <args>` against this instance's config (e.g. `admin user change-password`). */
  admin(args: string[]): Promise<string>;
  /**
   * Creates the admin `raibid` with `password` exactly as the gitea pod does when it starts
   * (tanka/lib/raibid/gitea.libsonnet).
   */
  createAdmin(password: string): Promise<void>;
  /** Stops Gitea (by PID) and deletes its data. */
  stop(): Promise<void>;
}

/**
 * templates/ and options/ of the Gitea binary: built without `bindata`, Gitea reads them from
 * STATIC_ROOT_PATH; scripts/tools.sh copies them from the module next to the binary.
 */
export function giteaShareDir(binary: string): string {
  const version = path.basename(binary).replace(/^gitea-?/, '');
  const named = version ? `gitea-${version}` : 'gitea';
  return path.join(path.dirname(TOOLS_BIN), 'share', named);
}

/**
 * Starts Gitea like the cluster's: install locked, sqlite, registration off, webhooks allowed to any
 * host; listening on 127.0.0.1 only. Tests run as root here, which Gitea refuses unless told.
 */
export async function startGitea(binary: string): Promise<TestGitea> {
  const realBinary = realpathSync(binary);
  const share = giteaShareDir(realBinary);
  if (!existsSync(path.join(share, 'templates'))) {
    throw new Error(
      `${share}/templates is missing: run 'bash scripts/tools.sh' (it copies Gitea's templates)`,
    );
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'raibid-gitea-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = path.join(dir, 'app.ini');
  await writeFile(
    config,
    `APP_NAME = raibid-ci test
RUN_MODE = prod
I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true
WORK_PATH = ${dir}

[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = ${port}
ROOT_URL = ${url}/
STATIC_ROOT_PATH = ${share}
APP_DATA_PATH = ${dir}/data
DISABLE_SSH = true
OFFLINE_MODE = true

[database]
DB_TYPE = sqlite3
PATH = ${dir}/data/gitea.db

[repository]
ROOT = ${dir}/repositories

[security]
INSTALL_LOCK = true
SECRET_KEY = ${randomBytes(16).toString('hex')}
INTERNAL_TOKEN = ${randomBytes(32).toString('hex')}
ALLOWED_HOST_LIST = *

[webhook]
ALLOWED_HOST_LIST = *

[service]
DISABLE_REGISTRATION = true

[log]
MODE = console
LEVEL = warn

[cron]
ENABLED = false
`,
    { mode: 0o600 },
  );
  const env = { ...process.env, GITEA_WORK_DIR: dir, HOME: dir, USER: 'git' };
  const gitea = startProcess(realBinary, ['--config', config, '--work-path', dir, 'web'], { env, cwd: dir });
  const stop = async () => {
    await stopProcess(gitea);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitUntilReady('gitea', gitea, async () => (await fetch(`${url}/api/v1/version`)).ok);
  } catch (error) {
    await stop();
    throw error;
  }

  const admin = async (args: string[]) => {
    const { stdout } = await execFileAsync(realBinary, ['--config', config, '--work-path', dir, ...args], {
      env,
      cwd: dir,
    });
    return stdout;
  };
  const createAdmin = async (password: string) => {
    await admin([
      'admin',
      'user',
      'create',
      '--admin',
      '--username',
      'raibid',
      '--password',
      password,
      '--email',
      'raibid@localhost',
      '--must-change-password=false',
    ]);
  };
  return { url, admin, createAdmin, stop };
}
