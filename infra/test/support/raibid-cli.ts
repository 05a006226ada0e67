import { execFile } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from './tools.js';

export interface RaibidRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Variables of the test's own environment that would point the CLI elsewhere. */
const INHERITED_SETTINGS = /^(KUBECONFIG|RAIBID_.*|GITEA_.*|REDIS_URL)$/;

/**
 * Runs the raibid CLI from source as a process (`node --import tsx packages/cli/src/main.ts`), the
 * way `pnpm raibid` does, with `env` on top of a cleaned copy of this process's environment.
 */
export function runRaibid(args: string[], env: Record<string, string> = {}): Promise<RaibidRun> {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !INHERITED_SETTINGS.test(key)),
  );
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', path.join(REPO_ROOT, 'packages/cli/src/main.ts'), ...args],
      { cwd: REPO_ROOT, env: { ...base, NO_COLOR: '1', ...env }, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? Number((error as { code?: number }).code ?? 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
