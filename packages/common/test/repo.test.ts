import { describe, expect, it } from 'vitest';
import { isValidRefName, jobRequestSchema, parseRepoSpec, RepoSpecError } from '../src/index.js';

const gitea = { giteaUrl: 'http://gitea-http:3000/' };

describe('parseRepoSpec', () => {
  it('resolves owner/name against GITEA_URL', () => {
    expect(parseRepoSpec('alice/hello', gitea)).toEqual({
      owner: 'alice',
      name: 'hello',
      cloneUrl: 'http://gitea-http:3000/alice/hello.git',
    });
    expect(parseRepoSpec('alice/hello.git', gitea).name).toBe('hello');
  });

  it('accepts http(s) clone URLs', () => {
    expect(parseRepoSpec('https://git.example.org/team/app.git')).toEqual({
      owner: 'team',
      name: 'app',
      cloneUrl: 'https://git.example.org/team/app.git',
    });
    expect(parseRepoSpec('http://127.0.0.1:3000/a/b').owner).toBe('a');
  });

  it.each([
    ['file:///etc/passwd', /neither/],
    ['ssh://git@host/a/b.git', /neither/],
    ['ext::sh -c touch% /tmp/pwned', /whitespace/],
    ['git@host:a/b.git', /not a valid repository name/],
    ['-upload-pack=evil/b', /not starting with "-"/],
    ['alice/-b', /not starting with "-"/],
    ['https://host/-x/b.git', /start with "-"/],
    ['https://user:pw@host/a/b.git', /credentials/],
    ['https://host/only', /owner\/name/],
    ['/srv/repos/app', /local paths are accepted only/],
    ['a/b/c', /neither/],
    ['', /empty/],
    ['../etc', /neither|not a valid/],
  ])('refuses %j', (spec, message) => {
    expect(() => parseRepoSpec(spec, gitea)).toThrow(RepoSpecError);
    expect(() => parseRepoSpec(spec, gitea)).toThrow(message);
  });

  it('needs GITEA_URL for the short form', () => {
    expect(() => parseRepoSpec('alice/hello')).toThrow(/GITEA_URL/);
  });

  it('accepts absolute local paths only when allowed', () => {
    expect(parseRepoSpec('/srv/repos/app.git/', { allowFileRepos: true })).toEqual({
      owner: 'local',
      name: 'app',
      cloneUrl: '/srv/repos/app.git',
    });
    expect(() => parseRepoSpec('/srv/-x/app', { allowFileRepos: true })).toThrow(/start with "-"/);
    expect(parseRepoSpec('/home/me/My Projects/Hello World!', { allowFileRepos: true })).toEqual({
      owner: 'local',
      name: 'Hello-World-',
      cloneUrl: '/home/me/My Projects/Hello World!',
    });
    expect(() => parseRepoSpec('/srv/a\nb', { allowFileRepos: true })).toThrow(/control characters/);
  });
});

describe('isValidRefName', () => {
  it.each(['main', 'feature/x', 'refs/heads/main', 'refs/tags/v1.0.0', 'refs/pull/3/head', 'v1.2'])(
    'accepts %j',
    (ref) => expect(isValidRefName(ref)).toBe(true),
  );
  it.each([
    '',
    '-main',
    '--upload-pack=x',
    'refs/heads/-x',
    'feature/--upload-pack=x',
    'a..b',
    'a b',
    'a~1',
    'a^',
    'a:b',
    'a?',
    'a*',
    'a[',
    'a\\b',
    'a@{1}',
    '@',
    '/a',
    'a/',
    'a.',
    'a//b',
    '.hidden',
    'a/.b',
    'x.lock',
    'a\u0000b',
    'x'.repeat(256),
  ])('refuses %j', (ref) => expect(isValidRefName(ref)).toBe(false));
});

describe('jobRequestSchema', () => {
  it('defaults ref to main and refuses unknown fields', () => {
    expect(jobRequestSchema.parse({ repo: 'a/b' })).toEqual({ repo: 'a/b', ref: 'main' });
    expect(jobRequestSchema.safeParse({ repo: 'a/b', branch: 'x' }).success).toBe(false);
    expect(jobRequestSchema.safeParse({ repo: 'a/b', sha: 'abc' }).success).toBe(false);
    expect(jobRequestSchema.safeParse({ repo: 'a/b', sha: 'A'.repeat(40) }).success).toBe(false);
    expect(jobRequestSchema.safeParse({ repo: 'a/b', sha: 'a'.repeat(40), env: { OK: '1' } }).success).toBe(
      true,
    );
    expect(jobRequestSchema.safeParse({ repo: 'a/b', env: { 'BAD-NAME': '1' } }).success).toBe(false);
  });
});
