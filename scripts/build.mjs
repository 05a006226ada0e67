// Bundles runnable packages to packages/<name>/dist/main.js with esbuild:
// `node scripts/build.mjs` builds all of them, `node scripts/build.mjs server` only the server
// (each image and Tilt's live update build just what they ship).
// Workspace packages (@raibid/*) are TypeScript sources and get bundled in, and so does
// whatever they import that the runnable package does not declare itself (pnpm would not
// let it resolve at run time); the package's own dependencies stay external.
import { cp, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const all = ['server', 'agent', 'cli'];
const requested = process.argv.slice(2);
const unknown = requested.filter((name) => !all.includes(name));
if (unknown.length > 0) {
  console.error(`build: unknown package ${unknown.join(', ')}; choose from ${all.join(', ')}`);
  process.exit(2);
}
const runnable = requested.length > 0 ? requested : all;

async function externalsOf(dir) {
  const pkg = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8'));
  return Object.keys(pkg.dependencies ?? {}).filter((name) => !name.startsWith('@raibid/'));
}

// The web UI's static files: uiPlugin reads them from `./assets/` next to its module,
// which is src/ui/assets when running sources and dist/assets next to the bundle.
if (runnable.includes('server')) {
  const uiSource = path.join(root, 'packages/server/src/ui/assets');
  const uiTarget = path.join(root, 'packages/server/dist/assets');
  await rm(uiTarget, { recursive: true, force: true });
  await cp(uiSource, uiTarget, { recursive: true, filter: (file) => !file.endsWith('.d.ts') });
  console.log('copied packages/server/dist/assets');
}

for (const name of runnable) {
  const dir = path.join(root, 'packages', name);
  await build({
    entryPoints: [path.join(dir, 'src/main.ts')],
    outfile: path.join(dir, 'dist/main.js'),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    sourcemap: true,
    external: await externalsOf(dir),
    // CommonJS dependencies bundled into an ESM file still call require().
    banner: {
      js: "#!/usr/bin/env node\nimport { createRequire as __raibidCreateRequire } from 'node:module';\nconst require = __raibidCreateRequire(import.meta.url);",
    },
    logLevel: 'warning',
  });
  console.log(`built packages/${name}/dist/main.js`);
}
