/**
 * The agent gave up waiting for Redis: past the job's timeout, or shutting down.
 * Whatever it could not record is left to the server's reaper, which re-queues the job.
 */
export class RedisUnreachableError extends Error {
  override name = 'RedisUnreachableError';
}

/**
 * Settles like `operation` unless `signal` aborts first, then rejects with the
 * signal's reason. The agent's connections wait out a Redis outage however long it
 * lasts; this is what bounds the wait.
 */
export function unlessAborted<T>(operation: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    operation.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** An AbortSignal that aborts with a RedisUnreachableError after `ms` (the timer does not keep the process alive). */
export function redisDeadline(ms: number, message: string): AbortSignal {
  const controller = new AbortController();
  // setTimeout takes at most 2^31-1 ms; a job timeout may be longer.
  const timer = setTimeout(
    () => controller.abort(new RedisUnreachableError(message)),
    Math.max(0, Math.min(ms, 2 ** 31 - 1)),
  );
  timer.unref();
  return controller.signal;
}
