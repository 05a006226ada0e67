// The live log: lines with ANSI colours, `#L<seq>` line links, step separators, follow mode.
import { colorCss, parseAnsi } from './ansi.js';
import { el } from './dom.js';

/** Anchor id of a step's first log line. @param {string} step */
export function stepAnchor(step) {
  return `step-${step.replace(/[^A-Za-z0-9_-]+/g, '-')}`;
}

/** @param {import('./ansi.js').AnsiSegment} segment */
function segmentNode(segment) {
  const { style } = segment;
  let fg = style.fg;
  let bg = style.bg;
  if (style.inverse) [fg, bg] = [bg ?? 'inverse', fg ?? 'inverse'];
  const classes = [];
  if (style.bold) classes.push('ansi-bold');
  if (style.dim) classes.push('ansi-dim');
  if (style.italic) classes.push('ansi-italic');
  if (style.underline) classes.push('ansi-underline');
  if (style.strike) classes.push('ansi-strike');
  if (fg === null && bg === null && classes.length === 0) return document.createTextNode(segment.text);
  const span = document.createElement('span');
  span.textContent = segment.text;
  if (fg === 'inverse') classes.push('ansi-fg-inverse');
  else if (fg !== null) {
    const css = colorCss(fg);
    if (css === null) classes.push(`ansi-fg-${fg}`);
    else span.style.color = css;
  }
  if (bg === 'inverse') classes.push('ansi-bg-inverse');
  else if (bg !== null) {
    const css = colorCss(bg);
    if (css === null) classes.push(`ansi-bg-${bg}`);
    else span.style.backgroundColor = css;
  }
  if (classes.length > 0) span.className = classes.join(' ');
  return span;
}

/**
 * Lines per block. Blocks are `content-visibility: auto`, so the browser lays out
 * only the blocks on screen: a log of many thousands of lines stays fast to append to.
 */
const BLOCK_LINES = 200;

/** Lines arrive in any number and order of batches; each seq is shown once, in order of arrival. */
export class LogView {
  /**
   * @param {HTMLElement} container
   * @param {HTMLElement} placeholder shown while there are no lines
   * @param {(following: boolean) => void} onFollowChange
   */
  constructor(container, placeholder, onFollowChange) {
    this.container = container;
    this.placeholder = placeholder;
    this.onFollowChange = onFollowChange;
    this.lastSeq = 0;
    /** @type {HTMLElement | null} */
    this.block = null;
    this.blockLines = 0;
    /** @type {string | null} */
    this.currentStep = null;
    /** @type {Set<string>} */
    this.anchoredSteps = new Set();
    /** @type {Map<string, import('./ansi.js').AnsiStyle>} */
    this.styles = new Map();
    /** @type {any[]} */
    this.pending = [];
    this.flushScheduled = false;
    this.following = true;
    /** A `#L<n>` to scroll to once that line has arrived. */
    this.wantedLine = lineOfHash(location.hash);
    if (this.wantedLine !== null) this.following = false;
    this.lastScrollY = window.scrollY;
    window.addEventListener('scroll', () => {
      // Scrolling up means the user wants to read: stop following. Moving up while
      // still at the bottom is the page getting shorter (a block of lines laid out
      // smaller than its estimate), not the user.
      if (window.scrollY < this.lastScrollY - 2 && this.following && !atBottom()) this.setFollowing(false);
      this.lastScrollY = window.scrollY;
    });
    // Before the browser jumps to a clicked line, so no frame of following scrolls it away.
    container.addEventListener('click', (event) => {
      if (event.target instanceof Element && event.target.closest('a.ln')) this.setFollowing(false);
    });
    window.addEventListener('hashchange', () => {
      const line = lineOfHash(location.hash);
      if (line === null) return;
      this.setFollowing(false);
      this.select(line);
    });
  }

  /** @param {{ seq: number, stream: string, step: string | null, line: string }} event */
  add(event) {
    if (event.seq <= this.lastSeq) return;
    this.lastSeq = event.seq;
    this.pending.push(event);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      requestAnimationFrame(() => this.flush());
    }
  }

  flush() {
    this.flushScheduled = false;
    if (this.pending.length === 0) return;
    /** @type {Map<HTMLElement, DocumentFragment>} */
    const additions = new Map();
    for (const event of this.pending) {
      if (this.block === null || this.blockLines === BLOCK_LINES) {
        this.block = el('div', { class: 'log-block' });
        this.blockLines = 0;
        this.container.append(this.block);
      }
      let fragment = additions.get(this.block);
      if (fragment === undefined) {
        fragment = document.createDocumentFragment();
        additions.set(this.block, fragment);
      }
      if (event.step !== null && event.step !== this.currentStep) {
        const id = this.anchoredSteps.has(event.step) ? null : stepAnchor(event.step);
        this.anchoredSteps.add(event.step);
        fragment.append(el('div', { class: 'log-step', id, role: 'heading', 'aria-level': 3 }, event.step));
      }
      this.currentStep = event.step;
      fragment.append(this.lineNode(event));
      this.blockLines++;
    }
    this.pending = [];
    this.placeholder.hidden = true;
    for (const [block, fragment] of additions) block.append(fragment);
    if (this.wantedLine !== null && this.wantedLine <= this.lastSeq) {
      const line = this.wantedLine;
      this.wantedLine = null;
      this.select(line);
      document.getElementById(`L${line}`)?.scrollIntoView({ block: 'center' });
    }
    if (this.following) this.scrollToEnd();
  }

  /**
   * `<div class="line" id="L12"><a class="ln" href="#L12">12</a><span class="text">…</span></div>`,
   * built with plain DOM calls: this runs once per line of possibly huge logs.
   * @param {{ seq: number, stream: string, line: string }} event
   */
  lineNode(event) {
    const { segments, style } = parseAnsi(event.line, this.styles.get(event.stream));
    this.styles.set(event.stream, style);
    const id = `L${event.seq}`;
    const line = document.createElement('div');
    line.className = `line line-${event.stream}`;
    line.id = id;
    const number = document.createElement('a');
    number.className = 'ln';
    number.href = `#${id}`;
    number.textContent = String(event.seq);
    number.setAttribute('aria-label', `line ${event.seq}`);
    const text = document.createElement('span');
    text.className = 'text';
    for (const segment of segments) text.append(segmentNode(segment));
    line.append(number, text);
    return line;
  }

  /** Marks one line as the selected one. @param {number} seq */
  select(seq) {
    for (const node of this.container.querySelectorAll('.line.selected')) node.classList.remove('selected');
    document.getElementById(`L${seq}`)?.classList.add('selected');
  }

  /** @param {boolean} following */
  setFollowing(following) {
    this.following = following;
    this.onFollowChange(following);
    if (following) this.scrollToEnd();
  }

  scrollToEnd() {
    window.scrollTo({ top: document.documentElement.scrollHeight });
    this.lastScrollY = window.scrollY;
  }
}

function atBottom() {
  return window.scrollY + window.innerHeight >= document.documentElement.scrollHeight - 40;
}

/** @param {string} hash */
function lineOfHash(hash) {
  const match = /^#L(\d+)$/.exec(hash);
  return match ? Number(match[1]) : null;
}
