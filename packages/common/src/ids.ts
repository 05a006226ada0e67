/** Crockford's base32, lowercase: the ULID alphabet (no i, l, o, u). */
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const TIME_CHARS = 10;
const RANDOM_CHARS = 16;

/** The random part of the last id, one base-32 digit per byte, and the millisecond it belongs to. */
const lastRandom = new Uint8Array(RANDOM_CHARS);
let lastTime = -1;

function encodeTime(now: number): string {
  let out = '';
  for (let i = 0, rest = now; i < TIME_CHARS; i++, rest = Math.floor(rest / 32)) {
    out = ALPHABET[rest % 32]! + out;
  }
  return out;
}

/** Adds one to the random part (base 32, last digit first), as a monotonic ULID does within a millisecond. */
function incrementRandom(): void {
  for (let i = RANDOM_CHARS - 1; i >= 0; i--) {
    if (lastRandom[i]! < 31) {
      lastRandom[i]! += 1;
      return;
    }
    lastRandom[i] = 0;
  }
  throw new Error('job id space of this millisecond exhausted (2^80 ids); retry in the next millisecond');
}

/**
 * Job ids are lowercase monotonic ULIDs: unique, URL-safe and sortable by creation time,
 * which is what newest-first listing (a lexicographic sorted set) relies on. Ids made in
 * the same millisecond count up from the first one's random part; a new millisecond draws
 * 80 fresh random bits with one getRandomValues call (5 of each byte's bits).
 */
export function newJobId(now = Date.now()): string {
  if (now > lastTime) {
    crypto.getRandomValues(lastRandom);
    for (let i = 0; i < RANDOM_CHARS; i++) lastRandom[i]! &= 31;
    lastTime = now;
  } else {
    // Same millisecond, or a clock that stepped back: stay after the last id.
    incrementRandom();
  }
  let random = '';
  for (let i = 0; i < RANDOM_CHARS; i++) random += ALPHABET[lastRandom[i]!];
  return encodeTime(lastTime) + random;
}

export const JOB_ID_PATTERN = /^[0-9a-hjkmnp-tv-z]{26}$/;
