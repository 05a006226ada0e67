import { get, type IncomingMessage } from 'node:http';

export interface SseFollow {
  /** Resolves once the log event with this seq has arrived. */
  until(seq: number): Promise<void>;
  close(): void;
}

/**
 * Follows a job's log over SSE. Every log event must carry the next seq (a line read
 * twice, or one skipped, fails the run); `onLine` gets each line's text when asked for.
 */
export async function followLog(
  port: number,
  jobId: string,
  onLine?: (line: string, receivedAt: number) => void,
): Promise<SseFollow> {
  let lastSeq = 0;
  let failure: Error | null = null;
  let waiting: { seq: number; resolve: () => void; reject: (error: Error) => void } | null = null;
  const settle = () => {
    if (!waiting) return;
    if (failure) waiting.reject(failure);
    else if (lastSeq >= waiting.seq) waiting.resolve();
    else return;
    waiting = null;
  };
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    const request = get(
      {
        host: '127.0.0.1',
        port,
        path: `/api/v1/jobs/${jobId}/logs`,
        headers: { accept: 'text/event-stream' },
      },
      resolve,
    );
    request.once('error', reject);
  });
  if (response.statusCode !== 200) throw new Error(`follow ${jobId}: HTTP ${response.statusCode}`);
  response.setEncoding('utf8');
  let buffered = '';
  response.on('data', (chunk: string) => {
    const receivedAt = performance.timeOrigin + performance.now();
    buffered += chunk;
    let end = buffered.indexOf('\n\n');
    let start = 0;
    while (end !== -1) {
      // Only log events have an id (the contract); status and comments do not.
      if (buffered.startsWith('id: ', start)) {
        const seq = Number(buffered.slice(start + 4, buffered.indexOf('\n', start)));
        if (seq !== lastSeq + 1) failure ??= new Error(`follow ${jobId}: seq ${seq} after ${lastSeq}`);
        lastSeq = seq;
        if (onLine) {
          const data = buffered.indexOf('data: ', start);
          onLine((JSON.parse(buffered.slice(data + 6, end)) as { line: string }).line, receivedAt);
        }
      }
      start = end + 2;
      end = buffered.indexOf('\n\n', start);
    }
    buffered = buffered.slice(start);
    settle();
  });
  response.once('error', (error) => {
    failure ??= error;
    settle();
  });
  return {
    until(seq) {
      return new Promise((resolve, reject) => {
        waiting = { seq, resolve, reject };
        settle();
      });
    },
    close() {
      response.destroy();
    },
  };
}
