import path from 'node:path';
import { z } from 'zod';

/** Where a job's source comes from. `cloneUrl` is what the agent hands to git. */
export const repoRefSchema = z.object({
  owner: z.string(),
  name: z.string(),
  cloneUrl: z.string(),
});
export type RepoRef = z.infer<typeof repoRefSchema>;

export interface RepoSpecOptions {
  /** Base of Gitea (e.g. http://gitea-http:3000); needed to resolve `owner/name`. */
  giteaUrl?: string | undefined;
  /** Accept an absolute path to a local git repository (the local stack only). */
  allowFileRepos?: boolean;
}

export class RepoSpecError extends Error {
  override name = 'RepoSpecError';
}

const SEGMENT = /^[A-Za-z0-9_.][A-Za-z0-9_.-]*$/;

function checkSegment(segment: string, what: string): string {
  if (!SEGMENT.test(segment) || segment === '.' || segment === '..' || segment.length > 100) {
    throw new RepoSpecError(
      `${what} "${segment}" is not a valid repository name part (letters, digits, "_", "-", "."; not starting with "-")`,
    );
  }
  return segment;
}

/**
 * Turns what a user gave as `repo` into a RepoRef, refusing anything that could
 * make git do more than fetch over http(s): no `file://`, `ssh://`, `ext::`,
 * credentials in URLs, or arguments starting with `-`.
 */
export function parseRepoSpec(input: string, options: RepoSpecOptions = {}): RepoRef {
  const spec = input.trim();
  if (spec === '') throw new RepoSpecError('repo is empty; give "owner/name" or an http(s) clone URL');
  if (/[\0-\x1f\x7f]/.test(spec)) throw new RepoSpecError('repo must not contain control characters');
  // A local path may hold spaces ("/home/me/My Projects/app"): git gets it as one argv entry.
  if (!spec.startsWith('/') && /\s/.test(spec)) throw new RepoSpecError('repo must not contain whitespace');

  if (/^https?:\/\//i.test(spec)) return parseHttpUrl(spec);

  if (spec.startsWith('/')) {
    if (!options.allowFileRepos) {
      throw new RepoSpecError(
        'local paths are accepted only by the local stack (RAIBID_ALLOW_FILE_REPOS=1); give "owner/name" or an http(s) URL',
      );
    }
    const normalized = path.posix.normalize(spec).replace(/\/+$/, '');
    if (normalized.split('/').some((part) => part.startsWith('-'))) {
      throw new RepoSpecError('no part of a local repo path may start with "-"');
    }
    // The displayed name: the directory's name with anything outside [A-Za-z0-9_.-] made "-".
    const base = path.posix
      .basename(normalized)
      .replace(/\.git$/, '')
      .replace(/[^A-Za-z0-9_.-]/g, '-');
    const name = checkSegment(base.replace(/^[-.]+/, '') || 'repo', 'name');
    return { owner: 'local', name, cloneUrl: normalized };
  }

  const shorthand = /^([^/]+)\/([^/]+?)(?:\.git)?$/.exec(spec);
  if (!shorthand) {
    throw new RepoSpecError(
      `repo "${spec}" is neither "owner/name" nor an http(s) URL (file://, ssh:// and ext:: are not accepted)`,
    );
  }
  const owner = checkSegment(shorthand[1]!, 'owner');
  const name = checkSegment(shorthand[2]!, 'name');
  if (!options.giteaUrl) {
    throw new RepoSpecError(
      `repo "${spec}" needs GITEA_URL to be set on the server; or give a full clone URL`,
    );
  }
  return { owner, name, cloneUrl: `${options.giteaUrl.replace(/\/+$/, '')}/${owner}/${name}.git` };
}

function parseHttpUrl(spec: string): RepoRef {
  let url: URL;
  try {
    url = new URL(spec);
  } catch {
    throw new RepoSpecError(`repo URL "${spec}" is not a valid URL`);
  }
  if (url.username || url.password) {
    throw new RepoSpecError(
      'repo URL must not contain credentials; the server passes GITEA_TOKEN to git itself',
    );
  }
  if (url.search || url.hash) throw new RepoSpecError('repo URL must not have a query or fragment');
  const parts = url.pathname.split('/').filter(Boolean);
  if (parts.length < 2) throw new RepoSpecError(`repo URL "${spec}" must end in /owner/name(.git)`);
  for (const part of parts) {
    if (part.startsWith('-')) throw new RepoSpecError('no part of a repo URL path may start with "-"');
  }
  const owner = checkSegment(decodeURIComponent(parts[parts.length - 2]!), 'owner');
  const name = checkSegment(decodeURIComponent(parts[parts.length - 1]!).replace(/\.git$/, ''), 'name');
  return { owner, name, cloneUrl: url.toString() };
}

/**
 * git's ref-name rules (git check-ref-format), plus no component starting with "-"
 * (git refuses such branch and tag names, and a ref or a part of it must never be read
 * as an option). Accepts `main`, `refs/heads/main`, `v1.0`, `refs/pull/3/head`.
 */
export function isValidRefName(ref: string): boolean {
  if (ref.length === 0 || ref.length > 255) return false;
  if (ref === '@') return false;
  if (/[\0-\x20\x7f~^:?*[\\]/.test(ref)) return false;
  if (ref.includes('..') || ref.includes('@{') || ref.includes('//')) return false;
  if (ref.startsWith('/') || ref.endsWith('/') || ref.endsWith('.')) return false;
  return ref
    .split('/')
    .every(
      (part) => part.length > 0 && !part.startsWith('.') && !part.startsWith('-') && !part.endsWith('.lock'),
    );
}

export const refNameSchema = z.string().refine(isValidRefName, {
  message: 'is not a valid git ref name (see git check-ref-format), e.g. "main" or "refs/tags/v1.0"',
});

export const shaSchema = z
  .string()
  .regex(/^[0-9a-f]{40}$/, 'must be a full 40-character lowercase hex commit sha');
