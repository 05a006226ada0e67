// Types of ansi.js for the tests (the browser loads the JavaScript as is).

/** A palette index 0–255, or a `#rrggbb` colour. */
export type AnsiColor = number | string;

export interface AnsiStyle {
  fg: AnsiColor | null;
  bg: AnsiColor | null;
  bold: boolean;
  dim: boolean;
  italic: boolean;
  underline: boolean;
  inverse: boolean;
  strike: boolean;
}

export interface AnsiSegment {
  text: string;
  style: AnsiStyle;
}

export function defaultStyle(): AnsiStyle;
export function parseAnsi(line: string, style?: AnsiStyle): { segments: AnsiSegment[]; style: AnsiStyle };
export function applySgr(previous: AnsiStyle, params: string): AnsiStyle;
export function colorCss(color: AnsiColor): string | null;
