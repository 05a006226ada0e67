import { accessSync, constants } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Where scripts/tools.sh puts the pinned Go-built tools (tilt, tk, kube-apiserver).
 * Debian's tools (dockerd, etcd, shellcheck, ...) are found on PATH.
 */
export const TOOLS_BIN =
  process.env.RAIBID_TOOLS_DIR !== undefined
    ? path.join(process.env.RAIBID_TOOLS_DIR, 'bin')
    : path.join(os.homedir(), '.cache', 'raibid-ci', 'tools', 'bin');

const ROOT = path.resolve(import.meta.dirname, '..', '..', '..');

/** The repository root (for rendering tanka/, loading the Tiltfile, building images). */
export const REPO_ROOT = ROOT;

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Absolute path of `name` from the tools cache, node_modules/.bin or PATH; undefined if absent. */
export function findTool(name: string): string | undefined {
  const dirs = [
    TOOLS_BIN,
    path.join(ROOT, 'node_modules', '.bin'),
    ...(process.env.PATH ?? '').split(path.delimiter),
    '/usr/sbin',
    '/sbin',
  ];
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    if (executable(candidate)) return candidate;
  }
  return undefined;
}

export interface ToolCheck {
  /** True when a tool is missing and the tests should be skipped. */
  skip: boolean;
  /** Absolute paths of the tools, by name (only meaningful when skip is false). */
  path: Record<string, string>;
}

/**
 * Finds the tools a test file needs. When one is missing the file is skipped with a line
 * naming the fix, except under RAIBID_REQUIRE_TOOLS=1 (set by .ci/run), where a missing
 * tool is an error: CI must never pass by skipping.
 */
export function needTools(...names: string[]): ToolCheck {
  const found: Record<string, string> = {};
  const missing: string[] = [];
  for (const name of names) {
    const where = findTool(name);
    if (where) found[name] = where;
    else missing.push(name);
  }
  if (missing.length === 0) return { skip: false, path: found };
  const message = `missing ${missing.join(', ')}: run 'bash scripts/tools.sh' (installs and builds the pinned tools)`;
  if (process.env.RAIBID_REQUIRE_TOOLS === '1') throw new Error(message);
  console.warn(`skipping: ${message}`);
  return { skip: true, path: found };
}
