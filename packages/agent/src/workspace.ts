import { chmod, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import path from 'node:path';

/** A fresh, empty directory for one job's checkout under the work directory. */
export async function createWorkspace(workDir: string, jobId: string): Promise<string> {
  await mkdir(workDir, { recursive: true });
  return mkdtemp(path.join(workDir, `raibid-${jobId}-`));
}

/** Makes every directory below `dir` writable again (builds leave read-only trees, e.g. Go's module cache). */
async function makeWritable(dir: string): Promise<void> {
  await chmod(dir, 0o700).catch(() => {});
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  await Promise.all(entries.filter((e) => e.isDirectory()).map((e) => makeWritable(path.join(dir, e.name))));
}

/** Deletes a job's workspace, whatever the build left in it. */
export async function removeWorkspace(dir: string): Promise<void> {
  try {
    await rm(dir, { recursive: true, force: true, maxRetries: 2 });
  } catch {
    await makeWritable(dir);
    await rm(dir, { recursive: true, force: true, maxRetries: 2 });
  }
}
