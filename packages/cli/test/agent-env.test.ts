import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentBaseEnv } from '../src/dev/agent-env.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'raibid-agent-env-'));
  await writeFile(
    path.join(dir, 'package.json'),
    JSON.stringify({
      name: 'stack-like',
      version: '9.9.9',
      scripts: { dev: 'node -e "process.stdout.write(JSON.stringify(process.env))"' },
    }),
  );
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('the environment of local-stack agents', () => {
  it('is the user’s, without what `pnpm dev` as a package script added or the server’s ports', async () => {
    const user: NodeJS.ProcessEnv = {
      ...process.env,
      PORT: '18180',
      METRICS_PORT: '18181',
      HOST: '127.0.0.1',
      RAIBID_SECRET_FOO: 'kept',
      MY_SETTING: 'kept too',
      // This test runs under a package script itself: start from a PATH with no node_modules/.bin.
      PATH: [...new Set([path.dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'])].join(
        path.delimiter,
      ),
    };
    for (const key of Object.keys(user)) if (/^(npm_|pnpm_)/.test(key)) delete user[key];
    // What the stack really receives: the environment of a script run by pnpm, as `pnpm dev` is.
    const { stdout } = await promisify(execFile)('pnpm', ['--silent', 'run', 'dev'], { cwd: dir, env: user });
    const scriptEnv = JSON.parse(stdout) as NodeJS.ProcessEnv;
    expect(scriptEnv.npm_package_name).toBe('stack-like'); // the fixture is what pnpm really does

    const env = agentBaseEnv(scriptEnv);
    expect(Object.keys(env).filter((key) => /^(npm_|pnpm_)/.test(key))).toEqual([]);
    expect(env).not.toHaveProperty('INIT_CWD');
    expect(env).not.toHaveProperty('PORT');
    expect(env).not.toHaveProperty('METRICS_PORT');
    expect(env).not.toHaveProperty('HOST');
    expect(env.PATH?.split(path.delimiter)).toEqual(user.PATH?.split(path.delimiter));
    expect(env).toMatchObject({ RAIBID_SECRET_FOO: 'kept', MY_SETTING: 'kept too', HOME: user.HOME });
  });

  it('keeps npm_* variables a user set when the stack does not run as a package script', () => {
    const env = agentBaseEnv({ PATH: '/usr/bin', npm_config_registry: 'https://npm.example.com/' });
    expect(env).toEqual({ PATH: '/usr/bin', npm_config_registry: 'https://npm.example.com/' });
  });
});
