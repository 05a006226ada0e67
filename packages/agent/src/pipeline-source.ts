import { lstat, readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  DEFAULT_JOB_TIMEOUT_MS,
  PIPELINE_FILE,
  type Pipeline,
  PipelineError,
  parsePipeline,
} from '@raibid/common';

/** A pipeline file larger than this is refused rather than parsed. */
const MAX_PIPELINE_BYTES = 256 * 1024;

/** What the agent will run, and where that came from (for the job log). */
export interface PipelinePlan {
  pipeline: Pipeline;
  /** `.raibid.yml`, or what auto-detection recognised, e.g. `Cargo.toml`. */
  source: string;
  detected: boolean;
}

/** The repository has no pipeline file and nothing raibid recognises. */
export class NoPipelineError extends Error {
  override name = 'NoPipelineError';
  /** Shown in the job log below the message. */
  readonly example = [
    `Add a ${PIPELINE_FILE} to the repository root, for example:`,
    '  version: 1',
    '  steps:',
    '    - name: test',
    '      run: ./run-tests.sh',
  ];
  constructor(hint = '') {
    super(
      `no pipeline: the repository has no ${PIPELINE_FILE} and nothing to build automatically (Cargo.toml, package.json, go.mod or Makefile)${hint}; add a ${PIPELINE_FILE} to the repository root`,
    );
  }
}

async function fileKind(file: string): Promise<'file' | 'other' | 'none'> {
  try {
    const stat = await lstat(file);
    return stat.isFile() ? 'file' : 'other';
  } catch {
    return 'none';
  }
}

/**
 * The job's pipeline: `.raibid.yml` parsed (PipelineError names line and field),
 * else one auto-detected from the repository's build files, else NoPipelineError.
 */
export async function loadPipeline(dir: string): Promise<PipelinePlan> {
  const file = path.join(dir, PIPELINE_FILE);
  const kind = await fileKind(file);
  if (kind === 'other') {
    throw new PipelineError(PIPELINE_FILE, [
      { line: null, field: '', message: 'must be a regular file (not a symlink or a directory)' },
    ]);
  }
  if (kind === 'file') {
    const bytes = await readFile(file);
    if (bytes.length > MAX_PIPELINE_BYTES) {
      throw new PipelineError(PIPELINE_FILE, [
        { line: null, field: '', message: `is larger than ${MAX_PIPELINE_BYTES / 1024} KiB` },
      ]);
    }
    return { pipeline: parsePipeline(bytes.toString('utf8')), source: PIPELINE_FILE, detected: false };
  }
  const detected = await detectPipeline(dir);
  if (detected) return detected;
  const misspelt = (await fileKind(path.join(dir, '.raibid.yaml'))) !== 'none';
  throw new NoPipelineError(misspelt ? ` (found .raibid.yaml: rename it to ${PIPELINE_FILE})` : '');
}

type Steps = Array<{ name: string; run: string }>;

const pipelineOf = (steps: Steps): Pipeline => ({
  version: 1,
  // A detected pipeline builds with ordinary tools; asking for the GPU takes a .raibid.yml.
  'runs-on': 'cpu',
  timeout: DEFAULT_JOB_TIMEOUT_MS,
  env: {},
  steps: steps.map((step) => ({ ...step, env: {} })),
});

/** Build steps inferred from the files in the repository root, first match wins. */
export async function detectPipeline(dir: string): Promise<PipelinePlan | null> {
  const has = async (name: string) => (await fileKind(path.join(dir, name))) === 'file';

  if (await has('Cargo.toml')) {
    const locked = (await has('Cargo.lock')) ? ' --locked' : '';
    return plan('Cargo.toml', [
      { name: 'build', run: `cargo build${locked}` },
      { name: 'test', run: `cargo test${locked}` },
    ]);
  }

  if (await has('package.json')) {
    const manifest = await readPackageJson(path.join(dir, 'package.json'));
    const pm = await nodePackageManager(has, manifest.packageManager);
    const steps: Steps = [{ name: 'install', run: pm.install }];
    if (manifest.scripts.has('build')) steps.push({ name: 'build', run: pm.run('build') });
    if (manifest.scripts.has('test')) steps.push({ name: 'test', run: pm.run('test') });
    return plan(pm.lockfile ? `package.json with ${pm.lockfile}` : 'package.json', steps);
  }

  if (await has('go.mod')) {
    return plan('go.mod', [
      { name: 'build', run: 'go build ./...' },
      { name: 'test', run: 'go test ./...' },
    ]);
  }

  for (const makefile of ['GNUmakefile', 'makefile', 'Makefile']) {
    if (!(await has(makefile))) continue;
    const text = await readFile(path.join(dir, makefile), 'utf8');
    const steps: Steps = [{ name: 'build', run: 'make' }];
    if (/^test\s*:/m.test(text)) steps.push({ name: 'test', run: 'make test' });
    return plan(makefile, steps);
  }
  return null;
}

const plan = (source: string, steps: Steps): PipelinePlan => ({
  pipeline: pipelineOf(steps),
  source,
  detected: true,
});

interface PackageManifest {
  scripts: Set<string>;
  packageManager: string | undefined;
}

/** The parts of package.json detection needs; a broken file yields none (`install` will report it). */
async function readPackageJson(file: string): Promise<PackageManifest> {
  try {
    const json = JSON.parse(await readFile(file, 'utf8')) as {
      scripts?: Record<string, unknown>;
      packageManager?: unknown;
    };
    return {
      scripts: new Set(Object.keys(json.scripts ?? {})),
      packageManager: typeof json.packageManager === 'string' ? json.packageManager : undefined,
    };
  } catch {
    return { scripts: new Set(), packageManager: undefined };
  }
}

interface NodePackageManager {
  lockfile: string | null;
  install: string;
  run: (script: string) => string;
}

/** The package manager the lockfile belongs to (or package.json's `packageManager`), npm otherwise. */
async function nodePackageManager(
  has: (name: string) => Promise<boolean>,
  declared: string | undefined,
): Promise<NodePackageManager> {
  const pnpm = (lockfile: string | null): NodePackageManager => ({
    lockfile,
    install: lockfile ? 'pnpm install --frozen-lockfile' : 'pnpm install',
    run: (s) => (s === 'test' ? 'pnpm test' : `pnpm run ${s}`),
  });
  const yarn = async (lockfile: string | null): Promise<NodePackageManager> => ({
    lockfile,
    // Yarn 2+ (a .yarnrc.yml) calls it --immutable; classic yarn --frozen-lockfile.
    install: !lockfile
      ? 'yarn install'
      : (await has('.yarnrc.yml'))
        ? 'yarn install --immutable'
        : 'yarn install --frozen-lockfile',
    run: (s) => `yarn run ${s}`,
  });
  const bun = (lockfile: string | null): NodePackageManager => ({
    lockfile,
    install: lockfile ? 'bun install --frozen-lockfile' : 'bun install',
    run: (s) => `bun run ${s}`,
  });
  const npm = (lockfile: string | null): NodePackageManager => ({
    lockfile,
    install: lockfile ? 'npm ci' : 'npm install',
    run: (s) => (s === 'test' ? 'npm test' : `npm run ${s}`),
  });

  if (await has('pnpm-lock.yaml')) return pnpm('pnpm-lock.yaml');
  if (await has('yarn.lock')) return yarn('yarn.lock');
  if (await has('bun.lock')) return bun('bun.lock');
  if (await has('bun.lockb')) return bun('bun.lockb');
  if (await has('package-lock.json')) return npm('package-lock.json');
  if (await has('npm-shrinkwrap.json')) return npm('npm-shrinkwrap.json');
  const name = declared?.split('@')[0];
  if (name === 'pnpm') return pnpm(null);
  if (name === 'yarn') return yarn(null);
  if (name === 'bun') return bun(null);
  return npm(null);
}
