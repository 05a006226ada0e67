import { formatDuration } from '@raibid/common';

/** Elapsed time for log lines: `0.4s`, `3.2s`, then `1m5s`, `1h2m`. */
export function formatElapsed(ms: number): string {
  if (ms < 60_000) return `${(Math.max(0, ms) / 1_000).toFixed(1)}s`;
  return formatDuration(ms);
}

/** A clone URL as shown in logs: without any userinfo (the server refuses it, but never print one). */
export function displayUrl(cloneUrl: string): string {
  if (!/^https?:\/\//i.test(cloneUrl)) return cloneUrl;
  try {
    const url = new URL(cloneUrl);
    url.username = '';
    url.password = '';
    return url.toString();
  } catch {
    return cloneUrl;
  }
}
