import { createRepo } from '@raibid/common/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizationHeader } from '../src/checkout.js';
import { type Harness, startHarness } from './support/harness.js';

const TOKEN = 'gitea-token-7c1d94ab';
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ gitToken: TOKEN });
});
afterAll(async () => {
  await h?.close();
});

describe('agent: private repositories', () => {
  it('clones with GITEA_TOKEN sent as a header, never showing it', async () => {
    const repo = await createRepo(h.reposDir, 'secret-app', {
      '.raibid.yml': 'version: 1\nsteps:\n  - { name: hi, run: "echo cloned privately; git remote -v" }\n',
    });
    const queued = await h.enqueue(repo);
    const agent = await h.agent({ GITEA_TOKEN: TOKEN, LOG_LEVEL: 'debug' });
    expect((await agent.exited).code).toBe(0);
    const job = (await h.store.get(queued.id))!;
    expect(job.status).toBe('succeeded');
    const text = (await h.events(queued.id)).map((e) => e.line).join('\n');
    expect(text).toContain('cloned privately');
    expect(text).toContain(`origin\t${h.git.url('secret-app')} (fetch)`); // no credentials in the remote
    expect(h.git.requests.some((r) => r.authorization === authorizationHeader(TOKEN))).toBe(true);
    expect(h.git.requests.every((r) => !r.url.includes(TOKEN))).toBe(true);
    for (const place of [text, JSON.stringify(job), agent.output()]) {
      expect(place).not.toContain(TOKEN);
      expect(place).not.toContain(authorizationHeader(TOKEN).slice('Basic '.length));
    }
  });

  it('ends `error` with a clear message when the token is missing or wrong', async () => {
    const repo = await createRepo(h.reposDir, 'locked', {
      '.raibid.yml': 'version: 1\nsteps:\n  - { name: hi, run: "true" }\n',
    });
    const missing = await h.enqueue(repo);
    await (await h.agent()).exited;
    expect(await h.store.get(missing.id)).toMatchObject({
      status: 'error',
      error: expect.stringMatching(/asks for credentials .*GIT_TOKEN or GITEA_TOKEN/),
    });
    const wrong = await h.enqueue(repo);
    await (await h.agent({ GIT_TOKEN: 'not-the-token' })).exited;
    const job = (await h.store.get(wrong.id))!;
    expect(job).toMatchObject({ status: 'error', error: expect.stringMatching(/refused the token/) });
    expect((await h.events(wrong.id)).map((e) => e.line).join('\n')).not.toContain('not-the-token');
  });
});
