import { defineConfig } from 'vitest/config';

// One config, one project per package. Every test that needs Redis starts its own
// redis-server (see @raibid/common/testing), so files run in parallel without sharing state.
const packages = ['common', 'server', 'agent', 'cli'] as const;

export default defineConfig({
  test: {
    reporters: ['default', 'json'],
    outputFile: { json: 'test-output/vitest.json' },
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: [
      ...packages.map((name) => ({
        test: {
          name,
          root: `packages/${name}`,
          include: ['test/**/*.test.ts'],
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      })),
      // The cluster side: images, Tanka, the Tiltfile and infra/ scripts, proven with the real
      // tools (docker, tk, tilt, kube-apiserver). Builds and starts take minutes, not seconds.
      {
        test: {
          name: 'infra',
          root: 'infra',
          include: ['test/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 900_000,
        },
      },
    ],
  },
});
