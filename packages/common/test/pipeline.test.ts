import { describe, expect, it } from 'vitest';
import { formatDuration, PipelineError, parseDuration, parsePipeline } from '../src/index.js';

function problemsOf(text: string): string {
  try {
    parsePipeline(text);
  } catch (error) {
    if (error instanceof PipelineError) return error.message;
    throw error;
  }
  throw new Error('expected the pipeline to be refused');
}

describe('parseDuration', () => {
  it.each([
    ['30m', 1_800_000],
    ['1h30m', 5_400_000],
    ['45s', 45_000],
    ['500ms', 500],
    ['2h', 7_200_000],
    [' 10s ', 10_000],
  ])('%s → %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '30', 'm', '10 m', '1.5h', '-5s', '5x', '5s!'])('refuses %j', (text) => {
    expect(parseDuration(text)).toBeNull();
  });

  it('formats back to what users write', () => {
    expect(formatDuration(5_400_000)).toBe('1h30m');
    expect(formatDuration(45_000)).toBe('45s');
    expect(formatDuration(250)).toBe('250ms');
    expect(formatDuration(0)).toBe('0ms');
  });
});

describe('parsePipeline', () => {
  it('parses the contract example into a typed pipeline', () => {
    const pipeline = parsePipeline(`version: 1
timeout: 30m
env: { RUST_BACKTRACE: "1", LEVEL: 3, VERBOSE: true }
steps:
  - name: test
    run: cargo test --locked
    timeout: 20m
    env: { FOO: bar }
  - name: lint
    run: cargo clippy
`);
    expect(pipeline).toEqual({
      version: 1,
      'runs-on': 'cpu',
      timeout: 1_800_000,
      env: { RUST_BACKTRACE: '1', LEVEL: '3', VERBOSE: 'true' },
      steps: [
        { name: 'test', run: 'cargo test --locked', timeout: 1_200_000, env: { FOO: 'bar' } },
        { name: 'lint', run: 'cargo clippy', env: {} },
      ],
    });
  });

  it('refuses a job or step timeout above 6h (the agent pod deadline is sized for it)', () => {
    expect(problemsOf('version: 1\ntimeout: 7h\nsteps:\n  - name: a\n    run: x\n')).toMatch(
      /^\.raibid\.yml:2: timeout: must be at most 6h/,
    );
    expect(problemsOf('version: 1\nsteps:\n  - name: a\n    run: x\n    timeout: 6h1m\n')).toMatch(
      /^\.raibid\.yml:5: steps\[0\]\.timeout: must be at most 6h/,
    );
    expect(parsePipeline('version: 1\ntimeout: 6h\nsteps:\n  - name: a\n    run: x\n').timeout).toBe(
      21_600_000,
    );
  });

  it('takes runs-on cpu or gpu, cpu by default, and names the line of any other value', () => {
    expect(parsePipeline('version: 1\nruns-on: gpu\nsteps:\n  - name: a\n    run: x\n')['runs-on']).toBe(
      'gpu',
    );
    expect(parsePipeline('version: 1\nruns-on: cpu\nsteps:\n  - name: a\n    run: x\n')['runs-on']).toBe(
      'cpu',
    );
    expect(parsePipeline('version: 1\nsteps:\n  - name: a\n    run: x\n')['runs-on']).toBe('cpu');
    expect(problemsOf('version: 1\nsteps:\n  - name: a\n    run: x\nruns-on: tpu\n')).toBe(
      '.raibid.yml:5: runs-on: must be "cpu" or "gpu"',
    );
    expect(problemsOf('version: 1\nsteps:\n  - name: a\n    run: x\n    runs-on: gpu\n')).toMatch(
      /^\.raibid\.yml:3: steps\[0\]: unknown field\(s\) runs-on$/,
    );
  });

  it('defaults the job timeout to 60 minutes', () => {
    expect(parsePipeline('version: 1\nsteps:\n  - name: a\n    run: "true"\n').timeout).toBe(3_600_000);
  });

  it('names the line and field of a missing command', () => {
    expect(problemsOf('version: 1\nsteps:\n  - name: build\n    run: make\n  - name: test\n')).toBe(
      '.raibid.yml:5: steps[1].run: is required (string)',
    );
  });

  it('names the line of a bad duration', () => {
    expect(problemsOf('version: 1\ntimeout: soon\nsteps:\n  - name: a\n    run: x\n')).toMatch(
      /^\.raibid\.yml:2: timeout: "soon" is not a duration; write it like 30s, 20m or 1h30m$/,
    );
  });

  it('refuses unknown fields, naming them', () => {
    expect(problemsOf('version: 1\nsteps:\n  - name: a\n    run: x\n    script: y\n')).toMatch(
      /^\.raibid\.yml:3: steps\[0\]: unknown field\(s\) script$/,
    );
  });

  it('refuses a wrong version, no steps and duplicate step names', () => {
    expect(problemsOf('version: 2\nsteps: []\n')).toBe(
      '.raibid.yml:1: version: must be 1\n.raibid.yml:2: steps: needs at least one step',
    );
    expect(problemsOf('version: 1\nsteps:\n  - {name: a, run: x}\n  - {name: a, run: y}\n')).toMatch(
      /:4: steps\[1\]\.name: "a" is used twice/,
    );
  });

  it('reports YAML syntax errors with their line', () => {
    expect(problemsOf('version: 1\nsteps:\n  - name: a\n    run: [unclosed\n')).toMatch(
      /^\.raibid\.yml:\d+: /,
    );
    expect(problemsOf('version: 1\nversion: 1\nsteps: []\n')).toMatch(/^\.raibid\.yml:2: .*unique/i);
  });

  it('refuses an empty file and a non-mapping document', () => {
    expect(problemsOf('')).toMatch(/version/);
    expect(problemsOf('- just\n- a list\n')).toMatch(/expected object/);
  });

  it('refuses bad env names', () => {
    expect(problemsOf('version: 1\nenv: { "1BAD": x }\nsteps:\n  - {name: a, run: x}\n')).toMatch(
      /env\.1BAD/,
    );
  });
});
