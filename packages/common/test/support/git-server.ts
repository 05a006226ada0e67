// Real git repositories and a real smart-HTTP git server (git http-backend behind
// a small Node HTTP server on 127.0.0.1) for tests. Reusable by any package's tests:
//
//   const root = await mkdtemp(...);
//   const repo = await createRepo(root, 'hello', { '.raibid.yml': 'version: 1\n...' });
//   const server = await startGitHttpServer({ root, token: 'secret' });   // token optional
//   server.url('hello')   // http://127.0.0.1:<port>/hello.git
//   repo.path             // /…/hello.git, usable as a local clone URL too
//   await server.stop();
import { execFile, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** A file's content, an executable file, or a submodule (a gitlink to `commit` of `url`). */
export type RepoFile = string | { content: string; executable: true } | { submodule: string; commit: string };

export interface TestRepo {
  name: string;
  /** The bare repository (`<root>/<name>.git`). */
  path: string;
  branch: string;
  /** Commits on `branch`, oldest first; the last is the tip. */
  commits: string[];
}

/** git with a fixed identity and no user/system configuration. */
export function git(args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      args,
      {
        cwd,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: cwd,
          GIT_CONFIG_NOSYSTEM: '1',
          GIT_CONFIG_GLOBAL: '/dev/null',
          GIT_AUTHOR_NAME: 'Test',
          GIT_AUTHOR_EMAIL: 'test@example.invalid',
          GIT_COMMITTER_NAME: 'Test',
          GIT_COMMITTER_EMAIL: 'test@example.invalid',
        },
      },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`git ${args.join(' ')} failed: ${stderr || error.message}`));
        else resolve(stdout.trim());
      },
    );
  });
}

async function writeTree(dir: string, files: Record<string, RepoFile>): Promise<void> {
  for (const [name, file] of Object.entries(files)) {
    if (typeof file === 'object' && 'submodule' in file) {
      await git(['update-index', '--add', '--cacheinfo', `160000,${file.commit},${name}`], dir);
      continue;
    }
    const target = path.join(dir, name);
    await mkdir(path.dirname(target), { recursive: true });
    const content = typeof file === 'string' ? file : file.content;
    await writeFile(target, content);
    if (typeof file === 'object') await chmod(target, 0o755);
    await git(['add', '--', name], dir);
  }
}

/** Creates `<root>/<name>.git` with one commit of `files` on `branch` (default main). */
export async function createRepo(
  root: string,
  name: string,
  files: Record<string, RepoFile>,
  options: { branch?: string; message?: string } = {},
): Promise<TestRepo> {
  const branch = options.branch ?? 'main';
  const bare = path.join(root, `${name}.git`);
  await mkdir(bare, { recursive: true });
  await git(['init', '--quiet', '--bare', `--initial-branch=${branch}`], bare);
  const repo: TestRepo = { name, path: bare, branch, commits: [] };
  await commitFiles(repo, files, options.message ?? 'initial commit');
  return repo;
}

/** Adds a commit changing `files` on the repo's branch and returns its sha. */
export async function commitFiles(
  repo: TestRepo,
  files: Record<string, RepoFile>,
  message = 'update',
): Promise<string> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'raibid-test-work-'));
  try {
    await git(['init', '--quiet', `--initial-branch=${repo.branch}`], work);
    if (repo.commits.length > 0) {
      await git(['fetch', '--quiet', '--', repo.path, repo.branch], work);
      await git(['reset', '--quiet', '--hard', 'FETCH_HEAD'], work);
    }
    await writeTree(work, files);
    await git(['commit', '--quiet', '--allow-empty', '-m', message], work);
    const sha = await git(['rev-parse', 'HEAD'], work);
    await git(['push', '--quiet', '--', repo.path, `HEAD:refs/heads/${repo.branch}`], work);
    repo.commits.push(sha);
    return sha;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Creates a lightweight tag in the bare repository. */
export async function tag(repo: TestRepo, name: string, commit: string): Promise<void> {
  await git(['tag', name, commit], repo.path);
}

export interface GitRequest {
  method: string;
  /** Path and query as requested. */
  url: string;
  authorization: string | undefined;
}

export interface GitHttpServer {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** Clone URL of `<root>/<name>.git`. */
  url(name: string): string;
  /** Every request received, in order. */
  requests: GitRequest[];
  stop(): Promise<void>;
}

export interface GitHttpServerOptions {
  /** Directory holding the bare repositories. */
  root: string;
  /** When set, every request must authenticate with it, as Gitea accepts a token: the Basic password
   * (or username), or `Authorization: token <t>` / `Bearer <t>`. Others get 401. */
  token?: string;
  /** Runs before each request is served (while the git client waits for the answer). */
  onRequest?: (request: GitRequest) => void | Promise<void>;
}

function authorized(header: string | undefined, token: string): boolean {
  if (!header) return false;
  const [scheme = '', value = ''] = header.split(' ', 2);
  if (/^(token|bearer)$/i.test(scheme)) return value === token;
  if (!/^basic$/i.test(scheme)) return false;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const user = colon === -1 ? decoded : decoded.slice(0, colon);
  const password = colon === -1 ? '' : decoded.slice(colon + 1);
  return password === token || (password === '' && user === token);
}

/** Serves the bare repositories under `root` over smart HTTP on 127.0.0.1 (git http-backend as CGI). */
export async function startGitHttpServer(options: GitHttpServerOptions): Promise<GitHttpServer> {
  const requests: GitRequest[] = [];
  const server = http.createServer(async (req, res) => {
    const request: GitRequest = {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      authorization: req.headers.authorization,
    };
    requests.push(request);
    try {
      await options.onRequest?.(request);
    } catch (error) {
      res.writeHead(500).end(String(error));
      return;
    }
    if (options.token !== undefined && !authorized(req.headers.authorization, options.token)) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"' }).end('authentication required\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const cgi = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        GIT_PROJECT_ROOT: options.root,
        GIT_HTTP_EXPORT_ALL: '1',
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_CONFIG_GLOBAL: '/dev/null',
        REQUEST_METHOD: request.method,
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
        ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
        ...(req.headers['content-encoding']
          ? { HTTP_CONTENT_ENCODING: String(req.headers['content-encoding']) }
          : {}),
      },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let headersDone = false;
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      headersDone = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
        const colon = line.indexOf(':');
        const key = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (key.toLowerCase() === 'status') status = Number.parseInt(value, 10);
        else headers[key] = value;
      }
      res.writeHead(status, headers);
      res.write(head.subarray(end + 4));
    });
    cgi.on('close', () => {
      if (!headersDone) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    origin,
    url: (name) => `${origin}/${name}.git`,
    requests,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
