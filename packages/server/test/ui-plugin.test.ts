import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uiPlugin } from '../src/ui/plugin.js';

let app: FastifyInstance;

beforeAll(async () => {
  app = Fastify();
  await app.register(uiPlugin);
  await app.ready();
});

afterAll(async () => {
  await app.close();
});

/** The versioned asset URLs an HTML page refers to. */
function assetUrls(html: string): string[] {
  return [...html.matchAll(/(?:href|src)="(\/ui\/[^"]+)"/g)].map((match) => match[1]!);
}

describe('web UI pages', () => {
  it('serves the job list at / as HTML that is revalidated on every load', async () => {
    const response = await app.inject({ method: 'GET', url: '/' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(response.headers['cache-control']).toBe('no-cache');
    expect(response.headers.etag).toMatch(/^"[0-9a-f]{20}"$/);
    expect(response.headers['content-security-policy']).toContain("default-src 'none'");
    expect(response.headers['content-security-policy']).toContain("connect-src 'self'");
    expect(response.body).toContain('<h1>Jobs</h1>');
    expect(response.body).not.toContain('{{assets}}');
  });

  it('answers a matching If-None-Match with 304 and no body', async () => {
    const first = await app.inject({ method: 'GET', url: '/' });
    const again = await app.inject({
      method: 'GET',
      url: '/',
      headers: { 'if-none-match': `"other", W/${first.headers.etag}` },
    });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
    const stale = await app.inject({ method: 'GET', url: '/', headers: { 'if-none-match': '"other"' } });
    expect(stale.statusCode).toBe(200);
  });

  it('serves the job page for a job id, and a 404 page for a path that cannot be a job', async () => {
    const page = await app.inject({ method: 'GET', url: '/jobs/01hzy3q5k8m2n4p6r8t0v2w4x6' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['cache-control']).toBe('no-cache');
    expect(page.body).toContain('id="log"');
    const bad = await app.inject({ method: 'GET', url: '/jobs/..%2Fetc' });
    expect(bad.statusCode).toBe(404);
    expect(bad.headers['content-type']).toBe('text/html; charset=utf-8');
  });

  it('answers HEAD like GET without a body', async () => {
    const response = await app.inject({ method: 'HEAD', url: '/' });
    expect(response.statusCode).toBe(200);
    expect(response.body).toBe('');
  });
});

describe('web UI assets', () => {
  it('serves every asset a page refers to under a versioned path, cached as immutable', async () => {
    const pages = await Promise.all(['/', '/jobs/01hzy3q5k8m2n4p6r8t0v2w4x6'].map((url) => app.inject(url)));
    const urls = new Set(pages.flatMap((page) => assetUrls(page.body)));
    expect(urls.size).toBeGreaterThanOrEqual(4);
    for (const url of urls) {
      const response = await app.inject({ method: 'GET', url });
      expect(response.statusCode, url).toBe(200);
      expect(response.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      expect(response.headers['x-content-type-options']).toBe('nosniff');
    }
  });

  it('serves modules the scripts import (relative to the versioned path) with JavaScript types', async () => {
    const page = await app.inject('/jobs/01hzy3q5k8m2n4p6r8t0v2w4x6');
    const script = assetUrls(page.body).find((url) => url.endsWith('/job.js'))!;
    const base = script.slice(0, script.lastIndexOf('/') + 1);
    const source = (await app.inject(script)).body;
    const imports = [...source.matchAll(/from '\.\/([^']+)'/g)].map((match) => match[1]!);
    expect(imports).toContain('log-view.js');
    for (const name of imports) {
      const response = await app.inject(`${base}${name}`);
      expect(response.statusCode, name).toBe(200);
      expect(response.headers['content-type']).toBe('text/javascript; charset=utf-8');
    }
  });

  it('refuses unknown files, other versions and the type declarations with 404', async () => {
    const page = await app.inject('/');
    const css = assetUrls(page.body).find((url) => url.endsWith('.css'))!;
    const base = css.slice(0, css.lastIndexOf('/') + 1);
    for (const url of [
      `${base}nope.js`,
      `${base}ansi.d.ts`,
      `${base}list.html`,
      '/ui/000000000000/app.css',
    ]) {
      const response = await app.inject(url);
      expect(response.statusCode, url).toBe(404);
      expect(response.headers['cache-control']).toBe('no-store');
      expect(response.json().error.message).toContain('reload the page');
    }
  });
});
