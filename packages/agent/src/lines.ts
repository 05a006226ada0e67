import { StringDecoder } from 'node:string_decoder';

/** Longest unterminated line held back waiting for its newline; longer output is emitted in pieces. */
export const MAX_PENDING_CHARS = 64 * 1024;

/**
 * Splits a process's output into lines: UTF-8 decoded across chunk boundaries,
 * `\n` and `\r\n` endings. An unterminated last line is emitted on `end()`, and
 * one that stalls (e.g. a `printf` prompt before a long wait) on `flushStalled()`,
 * so no output waits for a newline that may never come.
 */
export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';
  private writes = 0;
  private writesAtLastCheck = -1;

  constructor(private readonly onLine: (line: string) => void) {}

  write(chunk: Buffer): void {
    this.push(this.decoder.write(chunk));
  }

  /** The stream ended: emit whatever is left. */
  end(): void {
    this.push(this.decoder.end());
    this.emitPending();
  }

  /** Emits the pending partial line if nothing was written since the previous call. */
  flushStalled(): void {
    if (this.pending !== '' && this.writes === this.writesAtLastCheck) this.emitPending();
    this.writesAtLastCheck = this.writes;
  }

  private push(text: string): void {
    if (text === '') return;
    this.writes++;
    const data = this.pending + text;
    let start = 0;
    for (let nl = data.indexOf('\n'); nl !== -1; nl = data.indexOf('\n', start)) {
      this.emit(data.slice(start, nl));
      start = nl + 1;
    }
    this.pending = data.slice(start);
    while (this.pending.length > MAX_PENDING_CHARS) {
      let cut = MAX_PENDING_CHARS;
      const code = this.pending.charCodeAt(cut - 1);
      if (code >= 0xd800 && code <= 0xdbff) cut -= 1; // keep a surrogate pair together
      this.onLine(this.pending.slice(0, cut));
      this.pending = this.pending.slice(cut);
    }
  }

  private emitPending(): void {
    if (this.pending === '') return;
    const rest = this.pending;
    this.pending = '';
    this.emit(rest);
  }

  private emit(line: string): void {
    this.onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
  }
}
