// The web UI in a real browser (Debian chromium via playwright-core) against a real
// server, Redis and agent: the list, a running job's live log, cancel, retry.
// Screenshots go to test-output/ui/.
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRepo, waitFor } from '@raibid/common/testing';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_TOKEN, AUTH, startRedis, startTestServer, type TestServer } from './support/server.js';
import { type AgentProcess, startAgent } from './ui-support/agent-process.js';
import { launchChromium } from './ui-support/browser.js';

const OUT = fileURLToPath(new URL('../../../test-output/ui/', import.meta.url));
const AXE = fileURLToPath(import.meta.resolve('axe-core/axe.min.js'));

// MODE (the job's env) picks the outcome: pass, fail, or slow (ticks until cancelled).
const PIPELINE = `version: 1
steps:
  - name: build
    run: |
      printf '\\033[1;32m   Compiling\\033[0m demo v0.1.0\\n'
      printf '\\033[33mwarning\\033[0m: unused variable\\n' >&2
  - name: test
    run: |
      if [ "$MODE" = fail ]; then printf '\\033[31mtest broken ... FAILED\\033[0m\\n'; exit 1; fi
      if [ "$MODE" = slow ]; then
        for i in $(seq 1 600); do printf 'tick %d \\033[36m<b>not bold</b>\\033[0m\\n' "$i"; sleep 0.2; done
      fi
      echo "all good"
`;

let redis: Awaited<ReturnType<typeof startRedis>>;
let server: TestServer;
let agent: AgentProcess;
let browser: Browser;
let tmp: string;
let repoPath: string;

interface ApiJob {
  id: string;
  status: string;
  retryOf: string | null;
}

async function api<T>(method: 'GET' | 'POST', url: string, body?: unknown): Promise<T> {
  const response = await fetch(`${server.url}${url}`, {
    method,
    headers: { ...AUTH, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!response.ok) throw new Error(`${method} ${url}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

function submit(mode: 'pass' | 'fail' | 'slow'): Promise<ApiJob> {
  return api<ApiJob>('POST', '/api/v1/jobs', { repo: repoPath, ref: 'main', env: { MODE: mode } });
}

async function waitForStatus(id: string, status: string): Promise<void> {
  await waitFor(
    `job ${id} to be ${status} (agent output: ${agent.output().slice(-2000)})`,
    async () => (await api<ApiJob>('GET', `/api/v1/jobs/${id}`)).status === status,
    30_000,
    100,
  );
}

/**
 * Every request a page makes must go to the server under test (the UI needs no other
 * network), and nothing may fail, except 401s: a write is tried without a token
 * until the server asks for one (it may not need one), and chromium logs those.
 */
function watchPage(page: Page): { problems: string[]; unauthorized: string[] } {
  const problems: string[] = [];
  const unauthorized: string[] = [];
  page.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith(`${server.url}/`) && !url.startsWith('data:')) problems.push(`request to ${url}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('response', (response) => {
    if (response.status() === 401) unauthorized.push(`${response.request().method()} ${response.url()}`);
  });
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    if (/status of 401 \(Unauthorized\)/.test(message.text())) return;
    problems.push(`console error: ${message.text()}`);
  });
  return { problems, unauthorized };
}

/** The browser globals the page callbacks use (the project's tsconfig has no DOM lib). */
interface PageGlobals {
  scrollY: number;
  innerHeight: number;
  scrollTo(x: number, y: number): void;
  location: { hash: string };
  document: { documentElement: { scrollHeight: number; scrollWidth: number } };
  axe: { run(): Promise<{ violations: { id: string; impact: string; nodes: unknown[] }[] }> };
}

/** axe-core's accessibility rules on the page as it is now. */
async function axeViolations(page: Page): Promise<string[]> {
  await page.addScriptTag({ content: await readFile(AXE, 'utf8') });
  const violations = await page.evaluate(async () => {
    const result = await (globalThis as unknown as PageGlobals).axe.run();
    return result.violations.map((v) => `${v.impact} ${v.id} (${v.nodes.length} nodes)`);
  });
  return violations;
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'raibid-ui-'));
  await mkdir(OUT, { recursive: true });
  redis = await startRedis();
  server = await startTestServer(redis, { listen: true, env: { RAIBID_ALLOW_FILE_REPOS: '1' } });
  repoPath = (await createRepo(tmp, 'demo', { '.raibid.yml': PIPELINE })).path;
  agent = startAgent({
    redisUrl: redis.url,
    workDir: path.join(tmp, 'work'),
    cacheDir: path.join(tmp, 'cache'),
    name: 'ui-test-agent',
  });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await agent?.stop();
  await server?.close();
  await redis?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('web UI in a browser', () => {
  it('lists jobs, streams a running job, cancels and retries it', { timeout: 120_000 }, async () => {
    const passed = await submit('pass');
    const failed = await submit('fail');
    await waitForStatus(passed.id, 'succeeded');
    await waitForStatus(failed.id, 'failed');

    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, bypassCSP: true });
    const page = await context.newPage();
    const { problems, unauthorized } = watchPage(page);

    // The list: the finished jobs, then a job submitted while the page is open turns up running.
    await page.goto(`${server.url}/`);
    await page.locator(`tr[data-job="${passed.id}"][data-status="succeeded"]`).waitFor();
    await page.locator(`tr[data-job="${failed.id}"][data-status="failed"]`).waitFor();
    const slow = await submit('slow');
    const slowRow = page.locator(`tr[data-job="${slow.id}"][data-status="running"]`);
    await slowRow.waitFor({ timeout: 20_000 });
    await expect(slowRow.locator('td[data-label="Repository"]').textContent()).resolves.toBe('local/demo');
    await expect(slowRow.locator('td[data-label="Trigger"]').textContent()).resolves.toBe('api');
    await page.locator('[data-stat="running"]', { hasText: '1' }).waitFor();
    await page.locator('#agents', { hasText: agent.name }).waitFor();
    await page.locator('#running-jobs a', { hasText: 'local/demo main' }).waitFor();
    expect(await axeViolations(page)).toEqual([]);
    await page.screenshot({ path: path.join(OUT, 'list.png'), fullPage: true });

    // Filters: by status, through the form.
    await page.selectOption('#filter-status', 'failed');
    await page.waitForURL(`${server.url}/?status=failed`);
    await page.locator(`tr[data-job="${failed.id}"]`).waitFor();
    expect(await page.locator('#jobs-body tr').count()).toBe(1);
    await page.fill('#filter-repo', 'local/demo');
    await page.click('#filters button[type="submit"]');
    await page.waitForURL(`${server.url}/?status=failed&repo=local%2Fdemo`);
    await page.locator(`tr[data-job="${failed.id}"]`).waitFor();
    await page.fill('#filter-repo', 'someone/else');
    await page.selectOption('#filter-status', '');
    await page.waitForURL(`${server.url}/?repo=someone%2Felse`);
    await page.locator('#jobs-empty', { hasText: 'No jobs match these filters.' }).waitFor();
    await page.goto(`${server.url}/`);

    // The running job's page: log lines keep arriving, with colours, as text.
    await slowRow.locator('a.job-link').click();
    await page.waitForURL(`${server.url}/jobs/${slow.id}`);
    await page.locator('#job-status', { hasText: 'running' }).waitFor();
    await page.locator('.line', { hasText: /tick 3 <b>/ }).waitFor();
    const seen = await page.locator('.line').count();
    await waitFor('more log lines', async () => (await page.locator('.line').count()) > seen + 3, 10_000);
    const tick = page.locator('.line', { hasText: /tick 2 <b>/ });
    await expect(tick.locator('.ansi-fg-6').textContent()).resolves.toBe('<b>not bold</b>');
    expect(await page.locator('#log b').count()).toBe(0);
    await expect(
      page.locator('.line', { hasText: 'Compiling' }).locator('.ansi-bold.ansi-fg-2').textContent(),
    ).resolves.toBe('   Compiling');
    await page.locator('#steps .step-succeeded', { hasText: 'build' }).waitFor();
    await page.locator('#steps .step-running', { hasText: 'test' }).waitFor();
    await page.locator('#log .log-step#step-test').waitFor();

    // Following keeps the newest line in view; the toggle stops it; line numbers link to their line.
    expect(await page.getAttribute('#follow', 'aria-pressed')).toBe('true');
    await waitFor('the page to follow the log', () =>
      page.evaluate(() => {
        const w = globalThis as unknown as PageGlobals;
        return w.scrollY + w.innerHeight >= w.document.documentElement.scrollHeight - 40;
      }),
    );
    await page.click('#follow');
    expect(await page.getAttribute('#follow', 'aria-pressed')).toBe('false');
    await page.locator('#L2 .ln').click();
    await page.waitForURL(`${server.url}/jobs/${slow.id}#L2`);
    expect(await page.getAttribute('#L2', 'class')).toContain('selected');
    await page.click('#follow');
    expect(await page.getAttribute('#follow', 'aria-pressed')).toBe('true');
    // Going to a line (here by changing the URL's #L) stops following too.
    await page.evaluate(() => {
      (globalThis as unknown as PageGlobals).location.hash = '#L3';
    });
    await page.locator('#L3.selected').waitFor();
    expect(await page.getAttribute('#follow', 'aria-pressed')).toBe('false');
    await page.click('#follow');
    expect(await page.getAttribute('#follow', 'aria-pressed')).toBe('true');
    await page.screenshot({ path: path.join(OUT, 'job-running.png') });

    // Cancel: the first write asks for the token once, in a dialog.
    await page.click('#cancel');
    await page.locator('#token-dialog[open]').waitFor();
    await page.fill('#token-input', API_TOKEN);
    await page.click('#token-dialog button[value="save"]');
    await page.locator('#job-status', { hasText: 'cancelled' }).waitFor({ timeout: 15_000 });
    await page.locator('#log-state', { hasText: 'complete' }).waitFor();
    expect(await page.isVisible('#cancel')).toBe(false);
    expect(await page.isVisible('#retry')).toBe(true);
    expect(await page.title()).toBe('cancelled · local/demo main — raibid-ci');
    await waitForStatus(slow.id, 'cancelled');
    await page.evaluate(() => (globalThis as unknown as PageGlobals).scrollTo(0, 0));
    expect(await axeViolations(page)).toEqual([]);
    await page.screenshot({ path: path.join(OUT, 'job-cancelled.png'), fullPage: true });

    // The raw log download is the whole log as text.
    const href = await page.getAttribute('#log-links a[download]', 'href');
    const raw = await (await fetch(`${server.url}${href}`)).text();
    expect(raw).toContain('tick 1 \x1b[36m<b>not bold</b>');

    // Retry reuses the kept token (no dialog) and opens the new job.
    await page.click('#retry');
    await page.waitForURL(/\/jobs\/[0-9a-z]{26}$/);
    const retriedId = page.url().split('/').pop()!;
    expect(retriedId).not.toBe(slow.id);
    expect((await api<ApiJob>('GET', `/api/v1/jobs/${retriedId}`)).retryOf).toBe(slow.id);
    await page.locator('#job-facts a', { hasText: slow.id }).waitFor();
    await api('POST', `/api/v1/jobs/${retriedId}/cancel`);
    await page.locator('#job-status', { hasText: 'cancelled' }).waitFor({ timeout: 15_000 });

    expect(problems).toEqual([]);
    // One refused try without a token, before the dialog; none after it.
    expect(unauthorized).toEqual([`POST ${server.url}/api/v1/jobs/${slow.id}/cancel`]);
    await context.close();
  });

  it('is readable at phone width, and opens a log at a linked line', { timeout: 60_000 }, async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true });
    const { problems } = watchPage(page);
    await page.goto(`${server.url}/`);
    await page.locator('#jobs-body tr[data-status="failed"]').first().waitFor();
    // Cards, not a table wider than the screen.
    expect(
      await page.evaluate(() => (globalThis as unknown as PageGlobals).document.documentElement.scrollWidth),
    ).toBeLessThanOrEqual(390);
    await page.screenshot({ path: path.join(OUT, 'list-phone.png'), fullPage: true });

    const href = await page
      .locator('#jobs-body tr[data-status="failed"] a.job-link')
      .first()
      .getAttribute('href');
    await page.goto(`${server.url}${href}#L3`);
    await page.locator('#L3.selected').waitFor();
    expect(await page.getAttribute('#follow', 'aria-pressed')).toBe('false');
    await page.locator('.line', { hasText: 'test broken ... FAILED' }).locator('.ansi-fg-1').waitFor();
    await page.locator('#job-status', { hasText: 'failed' }).waitFor();
    expect(
      await page.evaluate(() => (globalThis as unknown as PageGlobals).document.documentElement.scrollWidth),
    ).toBeLessThanOrEqual(390);
    await page.evaluate(() => (globalThis as unknown as PageGlobals).scrollTo(0, 0));
    await page.screenshot({ path: path.join(OUT, 'job-phone.png'), fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  });
});
