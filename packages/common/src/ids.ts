import { monotonicFactory } from 'ulidx';

const ulid = monotonicFactory();

/**
 * Job ids are lowercase ULIDs: unique, URL-safe and sortable by creation time,
 * which is what newest-first listing (a lexicographic sorted set) relies on.
 */
export function newJobId(now = Date.now()): string {
  return ulid(now).toLowerCase();
}

export const JOB_ID_PATTERN = /^[0-9a-hjkmnp-tv-z]{26}$/;
