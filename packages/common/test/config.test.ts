import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { agentEnvSchema, ConfigError, parseConfig, serverEnvSchema } from '../src/index.js';

describe('parseConfig', () => {
  it('applies the contract defaults', () => {
    const config = parseConfig(serverEnvSchema, {});
    expect(config).toMatchObject({
      REDIS_URL: 'redis://127.0.0.1:6379',
      PORT: 8080,
      METRICS_PORT: 8081,
      HOST: '0.0.0.0',
      PUBLIC_URL: 'http://localhost:8080',
      LOG_LEVEL: 'info',
      RAIBID_LEASE_MS: 30_000,
      RAIBID_INSECURE_NO_AUTH: false,
      RAIBID_ALLOW_FILE_REPOS: false,
    });
    expect(config.RAIBID_API_TOKEN).toBeUndefined();
    expect(config.GITEA_URL).toBeUndefined();
    const agent = parseConfig(agentEnvSchema, {});
    expect(agent).toMatchObject({ RAIBID_HEARTBEAT_MS: 5_000, AGENT_IDLE_TIMEOUT: 30_000 });
  });

  it('reads values and treats empty strings as unset', () => {
    const config = parseConfig(serverEnvSchema, {
      PORT: '9000',
      GITEA_URL: 'http://gitea-http:3000/',
      RAIBID_INSECURE_NO_AUTH: '1',
      RAIBID_API_TOKEN: '',
    });
    expect(config.PORT).toBe(9000);
    expect(config.GITEA_URL).toBe('http://gitea-http:3000');
    expect(config.RAIBID_INSECURE_NO_AUTH).toBe(true);
    expect(config.RAIBID_API_TOKEN).toBeUndefined();
    expect(parseConfig(agentEnvSchema, { AGENT_IDLE_TIMEOUT: '2m' }).AGENT_IDLE_TIMEOUT).toBe(120_000);
  });

  it.each([
    [{ PORT: 'abc' }, /^invalid configuration: PORT must be a number \(got "abc"\)$/],
    [{ REDIS_URL: 'http://x' }, /^invalid configuration: REDIS_URL must be a redis/],
    [{ LOG_LEVEL: 'loud' }, /^invalid configuration: LOG_LEVEL /],
    [{ GITEA_URL: 'ftp://x' }, /^invalid configuration: GITEA_URL must be an http\(s\) URL/],
    [{ RAIBID_INSECURE_NO_AUTH: 'maybe' }, /^invalid configuration: RAIBID_INSECURE_NO_AUTH must be 1 or 0/],
  ])('names the bad variable in one line: %o', (env, message) => {
    expect(() => parseConfig(serverEnvSchema, env)).toThrow(ConfigError);
    expect(() => parseConfig(serverEnvSchema, env)).toThrow(message);
  });

  it('never echoes a secret value', () => {
    expect(() => parseConfig(agentEnvSchema, { AGENT_IDLE_TIMEOUT: 'forever' })).toThrow(
      /AGENT_IDLE_TIMEOUT/,
    );
  });

  it('exits 2 with one line from a process entry point', () => {
    const script = `import { loadConfigOrExit, serverEnvSchema } from './src/index.ts'; loadConfigOrExit(serverEnvSchema); console.log('unreachable');`;
    const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: path.resolve(import.meta.dirname, '..'),
      env: { ...process.env, METRICS_PORT: '99999' },
      encoding: 'utf8',
    });
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/^raibid: invalid configuration: METRICS_PORT /);
  });
});
