import { describe, expect, it } from 'vitest';
import { type AnsiStyle, colorCss, defaultStyle, parseAnsi } from '../src/ui/assets/ansi.js';

const plain = defaultStyle();
const style = (overrides: Partial<AnsiStyle>): AnsiStyle => ({ ...plain, ...overrides });
/** Segments as [text, style differences] for short assertions. */
function parts(line: string, start?: AnsiStyle): [string, Partial<AnsiStyle>][] {
  return parseAnsi(line, start).segments.map((segment) => {
    const diff: Partial<AnsiStyle> = {};
    for (const [key, value] of Object.entries(segment.style) as [keyof AnsiStyle, never][]) {
      if (value !== plain[key]) diff[key] = value;
    }
    return [segment.text, diff];
  });
}

describe('parseAnsi', () => {
  it('passes plain text through as one unstyled segment, including HTML-looking text', () => {
    expect(parts('<script>alert(1)</script> & "x"')).toEqual([['<script>alert(1)</script> & "x"', {}]]);
    expect(parts('')).toEqual([]);
  });

  it('applies basic, bright and reset SGR codes', () => {
    expect(parts('\x1b[31merror\x1b[0m: \x1b[1;92mok\x1b[m done')).toEqual([
      ['error', { fg: 1 }],
      [': ', {}],
      ['ok', { fg: 10, bold: true }],
      [' done', {}],
    ]);
    expect(parts('\x1b[44;97mblue\x1b[49mfg only\x1b[39m')).toEqual([
      ['blue', { fg: 15, bg: 4 }],
      ['fg only', { fg: 15 }],
    ]);
  });

  it('reads 256-colour and true-colour codes in semicolon and colon forms', () => {
    expect(parts('\x1b[38;5;208ma\x1b[48;2;10;20;30mb')).toEqual([
      ['a', { fg: 208 }],
      ['b', { fg: 208, bg: '#0a141e' }],
    ]);
    expect(parts('\x1b[38:2::255:0:128mc\x1b[38:2:1:2:3md\x1b[38:5:9me')).toEqual([
      ['c', { fg: '#ff0080' }],
      ['d', { fg: '#010203' }],
      ['e', { fg: 9 }],
    ]);
  });

  it('ignores out-of-range colours and stops at an unknown colour mode', () => {
    expect(parts('\x1b[38;5;300ma\x1b[38;2;1;2;999mb')).toEqual([['ab', {}]]);
    expect(parts('\x1b[38;7;1;31mc')).toEqual([['c', {}]]);
  });

  it('tracks attributes and their individual resets', () => {
    expect(parts('\x1b[1;2;3;4;7;9ma\x1b[22;23mb\x1b[24;27;29mc\x1b[4:3md\x1b[4:0me')).toEqual([
      ['a', { bold: true, dim: true, italic: true, underline: true, inverse: true, strike: true }],
      ['b', { underline: true, inverse: true, strike: true }],
      ['c', {}],
      ['d', { underline: true }],
      ['e', {}],
    ]);
  });

  it('carries the style into the next line and returns the state after the line', () => {
    const first = parseAnsi('\x1b[33mwarning: starts here');
    expect(first.style).toEqual(style({ fg: 3 }));
    expect(parts('plain text', first.style)).toEqual([['plain text', { fg: 3 }]]);
    expect(parts('and continues\x1b[0m', first.style)).toEqual([['and continues', { fg: 3 }]]);
  });

  it('drops cursor movement, erase, private modes, OSC titles and hyperlinks, and other escapes', () => {
    expect(
      parts('\x1b[2K\x1b[1Gplain\x1b[?25l \x1b]0;title\x07x \x1b]8;;https://e.x\x1b\\link\x1b]8;;\x1b\\'),
    ).toEqual([['plain x link', {}]]);
    expect(parts('\x1b(Bcharset \x1b=keypad \x1b[>4;1m not sgr')).toEqual([['charset keypad  not sgr', {}]]);
  });

  it('drops an escape sequence cut off at the end of the line', () => {
    expect(parts('text\x1b[3')).toEqual([['text', {}]]);
    expect(parts('text\x1b]8;;http://unterminated')).toEqual([['text', {}]]);
    expect(parts('text\x1b')).toEqual([['text', {}]]);
  });

  it('shows only what follows the last carriage return, but keeps CRLF line endings', () => {
    expect(parts(' 10%\r 55%\r\x1b[32m100%\x1b[0m')).toEqual([['100%', { fg: 2 }]]);
    expect(parts('windows line\r\r')).toEqual([['windows line', {}]]);
    expect(parts('\x1b[31mred\rstill red')).toEqual([['still red', { fg: 1 }]]);
  });

  it('keeps tabs and drops other control characters', () => {
    expect(parts('a\tb\x07c\x08d\x00e\x7f')).toEqual([['a\tbcde', {}]]);
  });

  it('merges adjacent text of the same style', () => {
    expect(parts('a\x1b[0mb\x1b[1m\x1b[22mc')).toEqual([['abc', {}]]);
  });
});

describe('colorCss', () => {
  it('leaves the 16 basic colours to the stylesheet', () => {
    expect(colorCss(0)).toBeNull();
    expect(colorCss(15)).toBeNull();
  });

  it('maps the 6×6×6 cube and the grey ramp like xterm', () => {
    expect(colorCss(16)).toBe('#000000');
    expect(colorCss(196)).toBe('#ff0000');
    expect(colorCss(208)).toBe('#ff8700');
    expect(colorCss(231)).toBe('#ffffff');
    expect(colorCss(232)).toBe('#080808');
    expect(colorCss(255)).toBe('#eeeeee');
    expect(colorCss('#0a141e')).toBe('#0a141e');
  });
});
