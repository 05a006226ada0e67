import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from '@raibid/common/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runStepProcess, type StepProcessOptions, TIMEOUT_EXIT_CODE } from '../src/step-process.js';
import { killGroup, processesInGroup } from './support/processes.js';

let cwd: string;
beforeAll(async () => {
  cwd = await mkdtemp(path.join(os.tmpdir(), 'raibid-step-'));
});
afterAll(async () => {
  await rm(cwd, { recursive: true, force: true });
});

function start(command: string, overrides: Partial<StepProcessOptions> = {}) {
  const lines: Array<[string, string]> = [];
  let pgid = 0;
  const result = runStepProcess({
    command,
    cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    timeoutMs: 20_000,
    killGraceMs: 5_000,
    signal: new AbortController().signal,
    onLine: (stream, line) => lines.push([stream, line]),
    onStart: (id) => {
      pgid = id;
    },
    ...overrides,
  });
  return { result, lines, pgid: () => pgid };
}

describe('runStepProcess', () => {
  it('runs bash -eo pipefail in its own process group and reports the exit code', async () => {
    const { result, lines, pgid } = start(
      'echo "pgid=$(ps -o pgid= $$ | tr -d " ")"; false | true; echo unreachable',
    );
    const done = await result;
    expect(done).toMatchObject({ end: 'exited', exitCode: 1 });
    expect(lines).toEqual([['stdout', `pgid=${pgid()}`]]); // pipefail + -e: stopped at the failing pipe
  });

  it('reports 128+n for a step killed by a signal', async () => {
    expect((await start('kill -KILL $$').result).exitCode).toBe(137);
  });

  it('stops at the timeout: SIGTERM to the whole group', async () => {
    const { result, pgid } = start('sleep 300 & sleep 300', { timeoutMs: 300 });
    const done = await result;
    expect(done).toMatchObject({ end: 'timed-out', exitCode: TIMEOUT_EXIT_CODE });
    expect(await processesInGroup(pgid())).toEqual([]);
  });

  it('SIGKILLs a group that ignores SIGTERM once the grace period is over', async () => {
    const controller = new AbortController();
    const { result, lines, pgid } = start("trap '' TERM; echo ready; sleep 300", {
      signal: controller.signal,
      killGraceMs: 300,
    });
    await waitFor('the step to start', () => lines.length > 0);
    controller.abort();
    const done = await result;
    expect(done).toMatchObject({ end: 'stopped', exitCode: 137 });
    expect(await processesInGroup(pgid())).toEqual([]);
  });

  it('stops processes a step leaves running in its group when it exits', async () => {
    const { result, lines, pgid } = start('sleep 300 & echo "bg $!"; exit 0');
    expect(await result).toMatchObject({ end: 'exited', exitCode: 0 });
    expect(lines[0]?.[1]).toMatch(/^bg \d+$/);
    expect(await processesInGroup(pgid())).toEqual([]);
  });

  it('stops a daemon the step started in a session of its own (setsid), found by its environment', async () => {
    const marker = `RAIBID_WORKSPACE=${cwd}`;
    const { result, lines } = start('setsid sleep 300 >/dev/null 2>&1 </dev/null & echo "bg $!"', {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', RAIBID_WORKSPACE: cwd },
      escapeMarker: marker,
      killGraceMs: 300,
    });
    expect(await result).toMatchObject({ end: 'exited', exitCode: 0 });
    const daemon = Number(lines[0]?.[1].split(' ')[1]);
    expect(daemon).toBeGreaterThan(0);
    const left = await processesInGroup(daemon); // setsid made it the leader of a group of its own
    killGroup(daemon); // in case it is still there: never leave it behind a failing test
    expect(left).toEqual([]);
  });

  it('delivers a stalled partial line while the step still runs', async () => {
    const controller = new AbortController();
    const { result, lines } = start("printf 'Password: '; sleep 300", { signal: controller.signal });
    let ended = false;
    void result.then(() => {
      ended = true;
    });
    await waitFor('the prompt', () => lines.length > 0);
    expect(ended).toBe(false);
    expect(lines).toEqual([['stdout', 'Password: ']]);
    controller.abort();
    expect((await result).end).toBe('stopped');
  });

  it('stops at once when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    const { result } = start('sleep 300', { signal: controller.signal });
    expect((await result).end).toBe('stopped');
  });

  it('keeps stdout and stderr apart', async () => {
    const { result, lines } = start('echo out; echo err >&2');
    await result;
    expect(lines).toEqual(
      expect.arrayContaining([
        ['stdout', 'out'],
        ['stderr', 'err'],
      ]),
    );
  });
});
