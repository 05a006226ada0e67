// Pure formatting of job fields for display; shared by the list and the job page.

export const FINAL_STATUSES = ['succeeded', 'failed', 'cancelled', 'error'];
export const JOB_STATUSES = ['queued', 'running', ...FINAL_STATUSES];

/** @param {string} status */
export function isFinal(status) {
  return FINAL_STATUSES.includes(status);
}

/**
 * `<1s`, `45s`, `3m 05s`, `2h 03m`, `4d 06h`.
 * @param {number} ms
 */
export function formatDuration(ms) {
  if (ms < 1000) return '<1s';
  const total = Math.floor(ms / 1000);
  const d = Math.floor(total / 86_400);
  const h = Math.floor((total % 86_400) / 3_600);
  const m = Math.floor((total % 3_600) / 60);
  const s = total % 60;
  const two = (/** @type {number} */ n) => String(n).padStart(2, '0');
  if (d > 0) return `${d}d ${two(h)}h`;
  if (h > 0) return `${h}h ${two(m)}m`;
  if (m > 0) return `${m}m ${two(s)}s`;
  return `${s}s`;
}

/**
 * `just now`, `42s ago`, `5m ago`, `3h ago`, `2d ago`.
 * @param {string} iso
 * @param {number} now
 */
export function formatAge(iso, now) {
  const seconds = Math.floor((now - Date.parse(iso)) / 1000);
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3_600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3_600)}h ago`;
  return `${Math.floor(seconds / 86_400)}d ago`;
}

/**
 * Run time of a job or step: start to finish, or start to now while it runs; null before it starts.
 * @param {{ startedAt: string | null, finishedAt: string | null }} span
 * @param {number} now
 */
export function spanMs(span, now) {
  if (span.startedAt === null) return null;
  const end = span.finishedAt === null ? now : Date.parse(span.finishedAt);
  return end - Date.parse(span.startedAt);
}

/** @param {string | null} sha */
export function shortSha(sha) {
  return sha === null ? '—' : sha.slice(0, 7);
}

/** Job ids are ULIDs whose head is a timestamp; the tail tells jobs apart. @param {string} id */
export function shortId(id) {
  return id.slice(-8);
}

/** @param {{ owner: string, name: string }} repo */
export function repoName(repo) {
  return `${repo.owner}/${repo.name}`;
}

/** Local date and time, `2024-05-01 13:02:03`. @param {string} iso */
export function formatTime(iso) {
  const t = new Date(iso);
  const two = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return `${t.getFullYear()}-${two(t.getMonth() + 1)}-${two(t.getDate())} ${two(t.getHours())}:${two(t.getMinutes())}:${two(t.getSeconds())}`;
}
