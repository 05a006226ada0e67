import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/** A file the UI serves, with what the response needs. */
export interface UiFile {
  body: Buffer;
  contentType: string;
  etag: string;
}

/** The web UI as loaded into memory: two HTML pages and their versioned assets. */
export interface UiBundle {
  /** Changes whenever any asset changes; part of every asset URL, so assets can be cached forever. */
  version: string;
  /** URL path prefix of the assets, `/ui/<version>`. */
  assetsPath: string;
  /** Served assets by file name. */
  assets: ReadonlyMap<string, UiFile>;
  pages: { list: UiFile; job: UiFile };
}

const ASSET_TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};
const HTML_TYPE = 'text/html; charset=utf-8';

function extensionOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot === -1 ? '' : name.slice(dot);
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

function file(body: Buffer, contentType: string): UiFile {
  return { body, contentType, etag: `"${sha256(body).slice(0, 20)}"` };
}

/**
 * Reads the UI from `dir` (src/ui/assets when running sources, dist/assets when
 * bundled). Only .js, .css and .svg files are served as assets; `*.d.ts` files are
 * the tests' types. The HTML pages get the versioned asset path filled in.
 */
export async function loadUiBundle(dir: URL): Promise<UiBundle> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (error) {
    throw new Error(
      `the web UI files are missing at ${fileURLToPath(dir)} (${(error as NodeJS.ErrnoException).code}); ` +
        'rebuild with `node scripts/build.mjs`, which copies them next to dist/main.js',
    );
  }
  const assets = new Map<string, UiFile>();
  const version = createHash('sha256');
  for (const name of names) {
    const contentType = ASSET_TYPES[extensionOf(name)];
    if (contentType === undefined) continue;
    const body = await readFile(new URL(name, dir));
    version.update(`${name}\0${sha256(body)}\0`);
    assets.set(name, file(body, contentType));
  }
  const versionHash = version.digest('hex').slice(0, 12);
  const assetsPath = `/ui/${versionHash}`;
  const page = async (name: string): Promise<UiFile> => {
    const template = await readFile(new URL(name, dir), 'utf8');
    return file(Buffer.from(template.replaceAll('{{assets}}', assetsPath)), HTML_TYPE);
  };
  return {
    version: versionHash,
    assetsPath,
    assets,
    pages: { list: await page('list.html'), job: await page('job.html') },
  };
}
