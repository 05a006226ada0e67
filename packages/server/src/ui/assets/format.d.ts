// Types of format.js for the tests (the browser loads the JavaScript as is).

export const FINAL_STATUSES: string[];
export const JOB_STATUSES: string[];
export function isFinal(status: string): boolean;
export function formatDuration(ms: number): string;
export function formatAge(iso: string, now: number): string;
export function spanMs(
  span: { startedAt: string | null; finishedAt: string | null },
  now: number,
): number | null;
export function shortSha(sha: string | null): string;
export function shortId(id: string): string;
export function repoName(repo: { owner: string; name: string }): string;
export function formatTime(iso: string): string;
