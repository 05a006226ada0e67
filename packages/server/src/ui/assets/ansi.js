// ANSI escape sequences in CI output → plain text segments with a style each.
// The log view builds DOM nodes from the segments (textContent only), so log text
// is never parsed as HTML. SGR colours and attributes are kept; cursor movement,
// OSC strings (titles, hyperlinks) and other controls are dropped; a carriage
// return inside a line overwrites what came before it, as a terminal shows progress bars.

/** @returns {import('./ansi.js').AnsiStyle} */
export function defaultStyle() {
  return {
    fg: null,
    bg: null,
    bold: false,
    dim: false,
    italic: false,
    underline: false,
    inverse: false,
    strike: false,
  };
}

const ESC = '\x1b';
/** Everything that is not plain text: C0 controls except tab, and DEL. */
const SPECIAL = /[\x00-\x08\x0a-\x1f\x7f]/g;
const PLAIN_CHECK = /[\x00-\x08\x0a-\x1f\x7f]/;

/**
 * Splits one log line into styled segments. `style` is the state left by the
 * previous line of the same stream (SGR state carries across lines in a terminal).
 * @param {string} line
 * @param {import('./ansi.js').AnsiStyle} [style]
 */
export function parseAnsi(line, style = defaultStyle()) {
  // Most lines are plain text: one test instead of the scan below.
  if (!PLAIN_CHECK.test(line)) return { segments: line === '' ? [] : [{ text: line, style }], style };
  /** @type {import('./ansi.js').AnsiSegment[]} */
  let segments = [];
  let current = style;
  let end = line.length;
  // Trailing CRs are CRLF line endings, not overwrites.
  while (end > 0 && line.charCodeAt(end - 1) === 0x0d) end--;

  let i = 0;
  while (i < end) {
    SPECIAL.lastIndex = i;
    const match = SPECIAL.exec(line);
    const next = match === null || match.index >= end ? end : match.index;
    if (next > i) push(segments, line.slice(i, next), current);
    if (next >= end) break;
    const ch = line[next];
    if (ch === ESC) {
      const sequence = readEscape(line, next, end);
      if (sequence.sgr !== null) current = applySgr(current, sequence.sgr);
      i = sequence.end;
    } else {
      if (ch === '\r') segments = [];
      i = next + 1;
    }
  }
  return { segments, style: current };
}

/**
 * Reads the escape sequence starting at `start` (an ESC). Returns where it ends
 * and, for an SGR sequence (`ESC [ … m`), its parameter string.
 * @param {string} line
 * @param {number} start
 * @param {number} end
 * @returns {{ end: number, sgr: string | null }}
 */
function readEscape(line, start, end) {
  const kind = line[start + 1];
  if (kind === '[') {
    // CSI: parameter bytes 0x30–0x3F, intermediate bytes 0x20–0x2F, one final byte 0x40–0x7E.
    let j = start + 2;
    while (j < end && inRange(line.charCodeAt(j), 0x30, 0x3f)) j++;
    const params = line.slice(start + 2, j);
    while (j < end && inRange(line.charCodeAt(j), 0x20, 0x2f)) j++;
    if (j >= end) return { end, sgr: null };
    const isSgr = line[j] === 'm' && j === start + 2 + params.length && !/[<=>?]/.test(params);
    return { end: j + 1, sgr: isSgr ? params : null };
  }
  if (kind === ']' || kind === 'P' || kind === 'X' || kind === '^' || kind === '_') {
    // OSC/DCS/SOS/PM/APC: a string ended by BEL or ST (ESC \).
    for (let j = start + 2; j < end; j++) {
      if (line[j] === '\x07') return { end: j + 1, sgr: null };
      if (line[j] === ESC && line[j + 1] === '\\') return { end: j + 2, sgr: null };
    }
    return { end, sgr: null };
  }
  // Any other escape: intermediates then one final byte (e.g. ESC ( B).
  let j = start + 1;
  while (j < end && inRange(line.charCodeAt(j), 0x20, 0x2f)) j++;
  return { end: Math.min(j + 1, end), sgr: null };
}

/** @param {number} code @param {number} low @param {number} high */
function inRange(code, low, high) {
  return code >= low && code <= high;
}

/**
 * @param {import('./ansi.js').AnsiSegment[]} segments
 * @param {string} text
 * @param {import('./ansi.js').AnsiStyle} style
 */
function push(segments, text, style) {
  const last = segments[segments.length - 1];
  if (last !== undefined && sameStyle(last.style, style)) last.text += text;
  else segments.push({ text, style });
}

/** @param {import('./ansi.js').AnsiStyle} a @param {import('./ansi.js').AnsiStyle} b */
function sameStyle(a, b) {
  return (
    a.fg === b.fg &&
    a.bg === b.bg &&
    a.bold === b.bold &&
    a.dim === b.dim &&
    a.italic === b.italic &&
    a.underline === b.underline &&
    a.inverse === b.inverse &&
    a.strike === b.strike
  );
}

/**
 * Applies SGR parameters (`1;31`, `38;5;208`, `38:2::255:0:0`, `` = reset) to a style.
 * @param {import('./ansi.js').AnsiStyle} previous
 * @param {string} params
 * @returns {import('./ansi.js').AnsiStyle}
 */
export function applySgr(previous, params) {
  const style = { ...previous };
  const parts = params.split(';');
  for (let k = 0; k < parts.length; k++) {
    const [head = '', ...subs] = /** @type {string} */ (parts[k]).split(':');
    const code = head === '' ? 0 : Number(head);
    if (!Number.isInteger(code)) continue;
    if (code === 38 || code === 48) {
      let color = null;
      if (subs.length > 0) {
        color = extendedColor(subs);
      } else {
        const mode = parts[k + 1];
        if (mode === '5') {
          color = extendedColor(['5', parts[k + 2] ?? '']);
          k += 2;
        } else if (mode === '2') {
          color = extendedColor(['2', parts[k + 2] ?? '', parts[k + 3] ?? '', parts[k + 4] ?? '']);
          k += 4;
        } else {
          // An unknown colour mode: the rest of the sequence cannot be interpreted.
          break;
        }
      }
      if (color !== null) {
        if (code === 38) style.fg = color;
        else style.bg = color;
      }
      continue;
    }
    if (code === 0) Object.assign(style, defaultStyle());
    else if (code === 1) style.bold = true;
    else if (code === 2) style.dim = true;
    else if (code === 3) style.italic = true;
    else if (code === 4) style.underline = subs[0] !== '0';
    else if (code === 7) style.inverse = true;
    else if (code === 9) style.strike = true;
    else if (code === 21) style.underline = true;
    else if (code === 22) {
      style.bold = false;
      style.dim = false;
    } else if (code === 23) style.italic = false;
    else if (code === 24) style.underline = false;
    else if (code === 27) style.inverse = false;
    else if (code === 29) style.strike = false;
    else if (code >= 30 && code <= 37) style.fg = code - 30;
    else if (code === 39) style.fg = null;
    else if (code >= 40 && code <= 47) style.bg = code - 40;
    else if (code === 49) style.bg = null;
    else if (code >= 90 && code <= 97) style.fg = code - 90 + 8;
    else if (code >= 100 && code <= 107) style.bg = code - 100 + 8;
  }
  return style;
}

/**
 * `5;n` → palette index n; `2;r;g;b` or `2;<colour space>;r;g;b` → `#rrggbb`.
 * @param {string[]} subs
 * @returns {number | string | null}
 */
function extendedColor(subs) {
  if (subs[0] === '5') return byte(subs[1]);
  if (subs[0] === '2') {
    const rgb = subs.length >= 5 ? subs.slice(2, 5) : subs.slice(1, 4);
    const [r, g, b] = rgb.map(byte);
    if (r == null || g == null || b == null) return null;
    return `#${hex(r)}${hex(g)}${hex(b)}`;
  }
  return null;
}

/** @param {string | undefined} text @returns {number | null} */
function byte(text) {
  if (text === undefined || !/^\d{1,3}$/.test(text)) return null;
  const value = Number(text);
  return value <= 255 ? value : null;
}

/** @param {number} value */
function hex(value) {
  return value.toString(16).padStart(2, '0');
}

const CUBE_LEVELS = [0, 95, 135, 175, 215, 255];

/**
 * CSS colour of a 256-palette index ≥ 16 or a `#rrggbb` colour; null for the 16
 * basic colours, which the stylesheet defines (tuned for contrast on the log background).
 * @param {number | string} color
 * @returns {string | null}
 */
export function colorCss(color) {
  if (typeof color === 'string') return color;
  if (color < 16) return null;
  if (color < 232) {
    const n = color - 16;
    const r = CUBE_LEVELS[Math.floor(n / 36)] ?? 0;
    const g = CUBE_LEVELS[Math.floor(n / 6) % 6] ?? 0;
    const b = CUBE_LEVELS[n % 6] ?? 0;
    return `#${hex(r)}${hex(g)}${hex(b)}`;
  }
  const level = 8 + (color - 232) * 10;
  return `#${hex(level)}${hex(level)}${hex(level)}`;
}
