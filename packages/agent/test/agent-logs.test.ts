import { createRepo } from '@raibid/common/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './support/harness.js';

// What reaches the job log: masking, the cap, unicode and long lines (one-job agents with their own env).
let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

/** Runs one job with a one-job agent and returns the final job and its log. */
async function runOne(
  files: Parameters<typeof createRepo>[2],
  options: { agentEnv?: Record<string, string>; jobEnv?: Record<string, string> } = {},
) {
  const repo = await createRepo(h.reposDir, `repo-${Math.random().toString(36).slice(2, 8)}`, files);
  const queued = await h.enqueue(repo, { env: options.jobEnv ?? {} });
  const exit = await (await h.agent(options.agentEnv)).exited;
  const job = (await h.store.get(queued.id))!;
  const events = await h.events(queued.id);
  const text = events.map((e) => e.line).join('\n');
  return { job, events, text, exit };
}

const pipeline = (body: string) => `version: 1\n${body}`;

describe('agent: job logs', () => {
  it('masks secret values in the log (agent RAIBID_SECRET_*, job secrets, tokens)', async () => {
    const { job, events, text } = await runOne(
      {
        '.raibid.yml': pipeline(`steps:
  - name: leak
    run: |
      echo "agent secret: $RAIBID_SECRET_DEPLOY_KEY"
      echo "inside-\${RAIBID_SECRET_DEPLOY_KEY}-word" >&2
      echo "job secret: $RAIBID_SECRET_JOB"
      echo "token: $GIT_TOKEN_COPY"
`),
      },
      {
        agentEnv: { RAIBID_SECRET_DEPLOY_KEY: 'hunter2-deploy', GIT_TOKEN: 'gt-0123456789' },
        jobEnv: { RAIBID_SECRET_JOB: 'job-s3cret', GIT_TOKEN_COPY: 'gt-0123456789' },
      },
    );
    expect(job.status).toBe('succeeded');
    expect(text).not.toMatch(/hunter2-deploy|job-s3cret|gt-0123456789/);
    expect(events.map((e) => e.line)).toEqual(
      expect.arrayContaining(['agent secret: ***', 'inside-***-word', 'job secret: ***', 'token: ***']),
    );
  });

  it('caps the log with a truncation notice and still finishes the job', async () => {
    const { job, events, text } = await runOne(
      {
        '.raibid.yml': pipeline(
          'steps:\n  - name: noisy\n    run: for i in $(seq 1 3000); do echo "line $i of noisy output"; done\n  - { name: after, run: "echo after" }\n',
        ),
      },
      { agentEnv: { RAIBID_LOG_CAP_BYTES: '8192' } },
    );
    expect(job.status).toBe('succeeded');
    const output = events.filter((e) => e.stream !== 'system');
    const stored = output.reduce((n, e) => n + Buffer.byteLength(e.line), 0);
    expect(stored).toBeLessThanOrEqual(8192);
    expect(output.length).toBeGreaterThan(100);
    expect(text).toContain("[raibid] log truncated: this job's log reached its 8 KiB limit");
    expect(text).toMatch(/\[raibid\] \d+ output lines were not stored: the job's log reached its limit/);
    expect(text).not.toContain('line 3000 of');
    expect(text).toContain('[raibid] step after: exit 0'); // raibid's own lines survive the cap
  });

  it('keeps unicode, very long lines and an unterminated last line intact', async () => {
    const { job, events } = await runOne({
      '.raibid.yml': pipeline(`steps:
  - name: text
    run: |
      echo "héllo wörld — 日本語 🚀"
      head -c 100000 /dev/zero | tr '\\0' x; echo
      printf 'no newline at the end'
`),
    });
    expect(job.status).toBe('succeeded');
    const lines = events.filter((e) => e.step === 'text' && e.stream === 'stdout').map((e) => e.line);
    expect(lines[0]).toBe('héllo wörld — 日本語 🚀');
    const long = lines.slice(1, -1);
    expect(long.join('')).toBe('x'.repeat(100_000)); // stored as consecutive pieces
    expect(long.length).toBeGreaterThan(1);
    expect(lines[lines.length - 1]).toBe('no newline at the end');
  });
});
