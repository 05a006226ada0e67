// No image registry is reachable here, so the Dockerfiles' base image (the official Node slim
// image) is replaced by a stand-in with the same name, made locally: a debootstrap minbase of
// Debian bookworm + this machine's Node (with npm and corepack, as the official image has them
// under /usr/local) + a `node` user with uid 1000.
//
// Only the stand-in carries this machine's CA certificates and NODE_EXTRA_CA_CERTS: outbound
// HTTPS here goes through a TLS-intercepting proxy, and `npm install` / `pnpm fetch` inside a
// build fail without its CA. The project's Dockerfiles never do this; they build against the
// real registries on a user's machine.
import { existsSync } from 'node:fs';
import {
  appendFile,
  copyFile,
  cp,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runCommand } from './command.js';
import { buildImage, type DockerDaemon } from './docker.js';

const CACHE_DIR = path.join(os.homedir(), '.cache', 'raibid-ci', 'standin');
/** The rootfs tar is the same for every run; debootstrap takes about a minute, so it is cached. */
const ROOTFS_TAR = path.join(CACHE_DIR, 'debootstrap-bookworm-minbase.tar');
const MIRROR = 'http://deb.debian.org/debian';
const ROOTFS_IMAGE = 'raibid-standin-rootfs:bookworm-minbase';

/** The external base image a Dockerfile builds FROM (the one FROM that is not one of its stages). */
export async function baseImageOf(dockerfile: string): Promise<string> {
  const text = await readFile(dockerfile, 'utf8');
  const stages = new Set<string>();
  const bases = new Set<string>();
  for (const match of text.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?\s*$/gim)) {
    if (!stages.has(match[1]!)) bases.add(match[1]!);
    if (match[2]) stages.add(match[2]);
  }
  if (bases.size !== 1)
    throw new Error(`${dockerfile}: expected one base image, found ${[...bases].join(', ')}`);
  return [...bases][0]!;
}

/** Debian bookworm minbase as a tar, made by debootstrap on first use and cached. */
export async function rootfsTar(): Promise<string> {
  if (existsSync(ROOTFS_TAR)) return ROOTFS_TAR;
  await mkdir(CACHE_DIR, { recursive: true });
  const work = await mkdtemp(path.join(os.tmpdir(), 'raibid-debootstrap-'));
  try {
    const root = path.join(work, 'root');
    await runCommand('debootstrap', ['--variant=minbase', 'bookworm', root, MIRROR]).catch((error: Error) => {
      throw new Error(`debootstrap failed (install it: apt-get install debootstrap): ${error.message}`);
    });
    const partial = `${ROOTFS_TAR}.${process.pid}.partial`;
    await runCommand('tar', ['-C', root, '-cf', partial, '.']);
    await rename(partial, ROOTFS_TAR); // atomic: a concurrent run sees the whole tar or none
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return ROOTFS_TAR;
}

/** This machine's CA bundle plus any local CAs (the intercepting proxy's), as one PEM. */
async function hostCaBundle(target: string): Promise<void> {
  await copyFile('/etc/ssl/certs/ca-certificates.crt', target);
  const local = '/usr/local/share/ca-certificates';
  if (!existsSync(local)) return;
  for (const name of await readdir(local)) {
    if (name.endsWith('.crt'))
      await appendFile(target, `\n${await readFile(path.join(local, name), 'utf8')}`);
  }
}

/**
 * Debian's official images (and so the Node images) keep apt from caching package lists and
 * .debs (/etc/apt/apt.conf.d/docker-clean); without it an `apt-get install` layer grows by ~80 MB.
 */
const DOCKER_CLEAN = `DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
`;

const STANDIN_DOCKERFILE = `FROM ${ROOTFS_IMAGE}
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY corepack /usr/local/lib/node_modules/corepack
COPY ca.crt /usr/local/share/raibid-standin/ca.crt
COPY docker-clean /etc/apt/apt.conf.d/docker-clean
RUN rm -rf /var/cache/apt/*.bin /var/cache/apt/archives/*.deb \\
 && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && ln -s ../lib/node_modules/corepack/dist/corepack.js /usr/local/bin/corepack \\
 && groupadd --gid 1000 node \\
 && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
ENV NODE_EXTRA_CA_CERTS=/usr/local/share/raibid-standin/ca.crt
CMD ["node"]
`;

/**
 * Makes the stand-in for `tag` (e.g. node:26-bookworm-slim) in `daemon`: imports the cached
 * rootfs, then adds Node, the `node` user and the CA bundle in a small build.
 */
export async function makeStandinBase(daemon: DockerDaemon, tag: string): Promise<void> {
  const tar = await rootfsTar();
  await daemon.docker(['import', tar, ROOTFS_IMAGE]);
  const context = await mkdtemp(path.join(os.tmpdir(), 'raibid-standin-'));
  try {
    const nodeLib = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules');
    await copyFile(process.execPath, path.join(context, 'node'));
    await cp(path.join(nodeLib, 'npm'), path.join(context, 'npm'), {
      recursive: true,
      verbatimSymlinks: true,
    });
    await cp(path.join(nodeLib, 'corepack'), path.join(context, 'corepack'), {
      recursive: true,
      verbatimSymlinks: true,
    });
    await hostCaBundle(path.join(context, 'ca.crt'));
    await writeFile(path.join(context, 'docker-clean'), DOCKER_CLEAN);
    await writeFile(path.join(context, 'Dockerfile'), STANDIN_DOCKERFILE);
    await buildImage(daemon, { context, dockerfile: 'Dockerfile', tag });
  } finally {
    await rm(context, { recursive: true, force: true });
  }
}
