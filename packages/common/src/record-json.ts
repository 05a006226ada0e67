/** A UTF-16 surrogate without its other half. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

function wellFormed(_key: string, value: unknown): unknown {
  return typeof value === 'string' ? value.replace(LONE_SURROGATE, '\uFFFD') : value;
}

/**
 * JSON of a job record (or part of one) as the queue's Lua scripts can read it back.
 * JSON.stringify writes a lone UTF-16 surrogate (a string from JSON input such as "\ud800",
 * e.g. in `env`) as a `\udXXX` escape, which Redis's Lua JSON decoder (cjson) refuses; such
 * a surrogate is stored as U+FFFD instead, as UTF-8 decoding would. JSON.stringify writes
 * no other `\ud` escape, so the common case costs one scan of the text.
 */
export function recordJson(value: unknown): string {
  const json = JSON.stringify(value);
  return json.includes('\\ud') ? JSON.stringify(value, wellFormed) : json;
}
