/** One Server-Sent Event as a client sees it. */
export interface SseEvent {
  event: string;
  id: string | undefined;
  data: string;
}

export interface SseConnection {
  status: number;
  headers: Headers;
  /** Events so far (grows while the stream is open). */
  events: SseEvent[];
  /** Comment lines (keep-alives) so far. */
  comments: number;
  /** Settles when the server ends the stream (or the client aborts). */
  ended: Promise<void>;
  abort(): void;
}

/** Parses an SSE byte stream per the HTML spec's rules (the parts the server uses). */
export function parseSse(text: string): { events: SseEvent[]; comments: number; rest: string } {
  const events: SseEvent[] = [];
  let comments = 0;
  const blocks = text.split('\n\n');
  const rest = blocks.pop() ?? '';
  for (const block of blocks) {
    let event = 'message';
    let id: string | undefined;
    const data: string[] = [];
    let fields = 0;
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) {
        comments++;
        continue;
      }
      const colon = line.indexOf(':');
      const name = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (name === 'event') event = value;
      else if (name === 'id') id = value;
      else if (name === 'data') data.push(value);
      else continue;
      fields++;
    }
    if (fields > 0 && data.length > 0) events.push({ event, id, data: data.join('\n') });
  }
  return { events, comments, rest };
}

/** Opens an SSE request with fetch and collects its events in the background. */
export async function openSse(url: string, headers: Record<string, string> = {}): Promise<SseConnection> {
  const controller = new AbortController();
  const response = await fetch(url, {
    headers: { accept: 'text/event-stream', ...headers },
    signal: controller.signal,
  });
  const connection: SseConnection = {
    status: response.status,
    headers: response.headers,
    events: [],
    comments: 0,
    ended: Promise.resolve(),
    abort: () => controller.abort(),
  };
  connection.ended = (async () => {
    if (!response.body) return;
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        const parsed = parseSse(buffer);
        connection.events.push(...parsed.events);
        connection.comments += parsed.comments;
        buffer = parsed.rest;
      }
    } catch (error) {
      if (!controller.signal.aborted) throw error;
    }
  })();
  return connection;
}
