import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PipelineError } from '@raibid/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPipeline, NoPipelineError } from '../src/pipeline-source.js';

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'raibid-detect-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function repoWith(files: Record<string, string>): Promise<string> {
  const dir = path.join(root, String(n++));
  await mkdir(dir);
  for (const [name, content] of Object.entries(files)) await writeFile(path.join(dir, name), content);
  return dir;
}

async function detected(files: Record<string, string>) {
  const plan = await loadPipeline(await repoWith(files));
  return {
    source: plan.source,
    detected: plan.detected,
    steps: plan.pipeline.steps.map((s) => [s.name, s.run]),
  };
}

const scripts = JSON.stringify({ name: 'x', scripts: { build: 'tsc', test: 'vitest' } });

describe('loadPipeline', () => {
  it('prefers .raibid.yml over anything it could detect', async () => {
    const plan = await loadPipeline(
      await repoWith({
        '.raibid.yml': 'version: 1\nsteps:\n  - { name: only, run: "true" }\n',
        'Cargo.toml': '',
      }),
    );
    expect(plan.detected).toBe(false);
    expect(plan.pipeline.steps.map((s) => s.name)).toEqual(['only']);
  });

  it('names the line and field of a problem in .raibid.yml', async () => {
    const error = await loadPipeline(
      await repoWith({ '.raibid.yml': 'version: 1\nsteps:\n  - name: a\n    runs: make\n' }),
    ).catch((e) => e);
    expect(error).toBeInstanceOf(PipelineError);
    expect(error.message).toContain('.raibid.yml:3: steps[0]');
  });

  it('refuses a .raibid.yml that is a symlink (it could point at the agent’s files)', async () => {
    const dir = await repoWith({});
    await symlink('/etc/hostname', path.join(dir, '.raibid.yml'));
    await expect(loadPipeline(dir)).rejects.toThrow(/must be a regular file/);
  });

  it('detects cargo, with --locked when there is a Cargo.lock', async () => {
    expect(await detected({ 'Cargo.toml': '', 'Cargo.lock': '' })).toEqual({
      source: 'Cargo.toml',
      detected: true,
      steps: [
        ['build', 'cargo build --locked'],
        ['test', 'cargo test --locked'],
      ],
    });
    expect((await detected({ 'Cargo.toml': '' })).steps[0]).toEqual(['build', 'cargo build']);
  });

  it('detects the package manager of package.json from its lockfile', async () => {
    expect(await detected({ 'package.json': scripts, 'pnpm-lock.yaml': '' })).toMatchObject({
      source: 'package.json with pnpm-lock.yaml',
      steps: [
        ['install', 'pnpm install --frozen-lockfile'],
        ['build', 'pnpm run build'],
        ['test', 'pnpm test'],
      ],
    });
    expect((await detected({ 'package.json': scripts, 'yarn.lock': '' })).steps[0]).toEqual([
      'install',
      'yarn install --frozen-lockfile',
    ]);
    expect(
      (await detected({ 'package.json': scripts, 'yarn.lock': '', '.yarnrc.yml': '' })).steps[0],
    ).toEqual(['install', 'yarn install --immutable']);
    expect((await detected({ 'package.json': scripts, 'bun.lock': '' })).steps[2]).toEqual([
      'test',
      'bun run test',
    ]);
    expect(await detected({ 'package.json': scripts, 'package-lock.json': '' })).toMatchObject({
      steps: [
        ['install', 'npm ci'],
        ['build', 'npm run build'],
        ['test', 'npm test'],
      ],
    });
  });

  it('installs without a lockfile with package.json’s packageManager, or npm; only scripts that exist run', async () => {
    expect(
      await detected({ 'package.json': JSON.stringify({ packageManager: 'pnpm@10.1.0' }) }),
    ).toMatchObject({
      source: 'package.json',
      steps: [['install', 'pnpm install']],
    });
    expect(await detected({ 'package.json': '{ not json' })).toMatchObject({
      steps: [['install', 'npm install']],
    });
  });

  it('detects go.mod and a Makefile (with `make test` only when it has a test target)', async () => {
    expect((await detected({ 'go.mod': 'module x' })).steps).toEqual([
      ['build', 'go build ./...'],
      ['test', 'go test ./...'],
    ]);
    expect((await detected({ Makefile: 'all:\n\techo\n' })).steps).toEqual([['build', 'make']]);
    expect((await detected({ Makefile: 'all:\n\techo\ntest: all\n\techo\n' })).steps).toEqual([
      ['build', 'make'],
      ['test', 'make test'],
    ]);
  });

  it('tells how to add a pipeline when there is nothing to run', async () => {
    const error = await loadPipeline(await repoWith({ 'README.md': '' })).catch((e) => e);
    expect(error).toBeInstanceOf(NoPipelineError);
    expect(error.message).toContain('add a .raibid.yml to the repository root');
    expect(error.example.join('\n')).toContain('version: 1');
    await expect(loadPipeline(await repoWith({ '.raibid.yaml': 'version: 1' }))).rejects.toThrow(
      /found \.raibid\.yaml: rename it to \.raibid\.yml/,
    );
  });
});
