import type { OutputStream } from './io.js';

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const CLEAR_LINE = '\r\x1b[2K';

/**
 * A one-line spinner on a terminal (stderr) while the CLI waits. Output written through `print`
 * clears the spinner first and redraws it after, so log lines and the spinner never mix.
 * On a stream that is not a terminal it draws nothing.
 */
export class Progress {
  private readonly enabled: boolean;
  private label: () => string = () => '';
  private frame = 0;
  private timer: NodeJS.Timeout | null = null;
  private drawn = false;

  constructor(private readonly stream: OutputStream) {
    this.enabled = Boolean(stream.isTTY);
  }

  /** Shows (or changes) the spinner text; a function is re-evaluated on each frame (elapsed times). */
  set(label: string | (() => string)): void {
    if (!this.enabled) return;
    this.label = typeof label === 'function' ? label : () => label;
    if (this.timer === null) {
      this.timer = setInterval(() => this.draw(), 100);
      this.timer.unref();
    }
    this.draw();
  }

  private draw(): void {
    if (this.timer === null) return;
    this.frame = (this.frame + 1) % FRAMES.length;
    const line = `${FRAMES[this.frame]} ${this.label()}`;
    const columns = this.stream.columns ?? 80;
    this.stream.write(`${CLEAR_LINE}${line.length >= columns ? line.slice(0, columns - 1) : line}`);
    this.drawn = true;
  }

  /** Runs `write` with the spinner line cleared. */
  print(write: () => void): void {
    if (this.drawn) this.stream.write(CLEAR_LINE);
    this.drawn = false;
    write();
    this.draw();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.drawn) this.stream.write(CLEAR_LINE);
    this.drawn = false;
  }
}
