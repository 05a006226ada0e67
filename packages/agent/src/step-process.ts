import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { LineSplitter } from './lines.js';
import { terminateGroup, terminateWithEnv } from './process-group.js';

/** Exit code recorded for a step stopped by its timeout (as GNU `timeout` reports it). */
export const TIMEOUT_EXIT_CODE = 124;

/** How often an unterminated output line is checked for having stalled. */
const STALLED_LINE_MS = 500;
/** How long to wait for output pipes to close once the step's process group is gone. */
const PIPE_CLOSE_MS = 2_000;

export interface StepProcessOptions {
  /** The step's `run`, given to `bash -eo pipefail -c`. */
  command: string;
  cwd: string;
  env: Record<string, string>;
  /** Stop the step after this long (SIGTERM, SIGKILL after killGraceMs). */
  timeoutMs: number;
  killGraceMs: number;
  /** Aborting stops the step the same way (cancel, shutdown, lost job). */
  signal: AbortSignal;
  /** The grace period after an abort, read when it happens (a cancel allows less); killGraceMs by default. */
  abortGraceMs?: () => number;
  onLine: (stream: 'stdout' | 'stderr', line: string) => void;
  /**
   * An environment entry (`NAME=value`, set in `env`) unique to this run of the step: processes
   * that carry it but left the step's process group (setsid, daemons) are stopped with the group.
   */
  escapeMarker?: string;
  /** Called once the process runs, with its pid (= its process group id). */
  onStart?: (pgid: number) => void;
}

export interface StepProcessResult {
  /** `exited` on its own, `timed-out`, or `stopped` because the signal was aborted. */
  end: 'exited' | 'timed-out' | 'stopped';
  /** The exit status; 128+n for a signal n, TIMEOUT_EXIT_CODE for a timeout. */
  exitCode: number;
  durationMs: number;
}

/**
 * Runs one step in its own process group (a new session via `detached`) so that
 * everything it starts can be stopped together: on timeout or abort the whole
 * group gets SIGTERM, then SIGKILL after the grace period. Processes the step
 * leaves behind are stopped the same way when it exits.
 */
export function runStepProcess(options: StepProcessOptions): Promise<StepProcessResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-eo', 'pipefail', '-c', options.command], {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stopping: Promise<unknown> | null = null;
    let end: StepProcessResult['end'] = 'exited';
    let graceMs = options.killGraceMs;
    const stop = (why: 'timed-out' | 'stopped', grace: number) => {
      if (stopping || child.pid === undefined) return;
      end = why;
      graceMs = grace;
      stopping = terminateGroup(child.pid, grace);
    };
    const timer = setTimeout(() => stop('timed-out', options.killGraceMs), options.timeoutMs);
    const onAbort = () => stop('stopped', options.abortGraceMs?.() ?? options.killGraceMs);

    const splitters = {
      stdout: new LineSplitter((line) => options.onLine('stdout', line)),
      stderr: new LineSplitter((line) => options.onLine('stderr', line)),
    };
    const stalled = setInterval(() => {
      splitters.stdout.flushStalled();
      splitters.stderr.flushStalled();
    }, STALLED_LINE_MS);
    const closed = (['stdout', 'stderr'] as const).map(
      (name) =>
        new Promise<void>((done) => {
          const stream = child[name];
          stream.on('data', (chunk: Buffer) => splitters[name].write(chunk));
          stream.once('close', () => {
            splitters[name].end();
            done();
          });
        }),
    );

    const stopWatching = () => {
      clearTimeout(timer);
      options.signal.removeEventListener('abort', onAbort);
    };
    child.once('error', (error) => {
      stopWatching();
      clearInterval(stalled);
      reject(new Error(`cannot start bash for the step: ${error.message}`));
    });
    child.once('spawn', () => {
      options.onStart?.(child.pid!);
      if (options.signal.aborted) onAbort();
      else options.signal.addEventListener('abort', onAbort, { once: true });
    });
    child.once('exit', async (code, signal) => {
      stopWatching(); // from here on the step has ended the way it did
      const pgid = child.pid!;
      // The leader is gone; anything it left running in its group goes too, and so does
      // anything that left the group (a daemon) but still carries the step's marker.
      await (stopping ?? terminateGroup(pgid, options.killGraceMs));
      if (options.escapeMarker) await terminateWithEnv(options.escapeMarker, graceMs);
      // A process that escaped the group (setsid) may still hold the pipes.
      const pipes = Promise.all(closed);
      const late = await Promise.race([
        pipes.then(() => false),
        new Promise<boolean>((r) => setTimeout(() => r(true), PIPE_CLOSE_MS)),
      ]);
      if (late) {
        child.stdout.destroy();
        child.stderr.destroy();
        await pipes;
      }
      clearInterval(stalled);
      const exitCode =
        end === 'timed-out'
          ? TIMEOUT_EXIT_CODE
          : (code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0));
      resolve({ end, exitCode, durationMs: Date.now() - started });
    });
  });
}
