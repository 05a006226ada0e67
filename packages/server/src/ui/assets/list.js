// The job list (`/`): filters, a live-updating page of jobs, pagination, and the queue panel.
import { ApiError, getJson } from './api.js';
import {
  ageElement,
  durationElement,
  el,
  fillStatusOptions,
  showMessage,
  startClock,
  statusBadge,
} from './dom.js';
import { formatTime, repoName, shortId, shortSha } from './format.js';
import { refreshPanel } from './panel.js';
import { poll } from './poll.js';

const POLL_MS = 3000;

const params = new URLSearchParams(location.search);
const filter = {
  status: params.get('status') ?? '',
  repo: params.get('repo') ?? '',
  cursor: params.get('cursor') ?? '',
};

const form = /** @type {HTMLFormElement} */ (document.getElementById('filters'));
const statusSelect = /** @type {HTMLSelectElement} */ (form.elements.namedItem('status'));
const repoInput = /** @type {HTMLInputElement} */ (form.elements.namedItem('repo'));
const body = /** @type {HTMLElement} */ (document.getElementById('jobs-body'));
const empty = /** @type {HTMLElement} */ (document.getElementById('jobs-empty'));
const error = /** @type {HTMLElement} */ (document.getElementById('jobs-error'));
const updated = /** @type {HTMLElement} */ (document.getElementById('updated'));
const newest = /** @type {HTMLAnchorElement} */ (document.getElementById('page-newest'));
const older = /** @type {HTMLAnchorElement} */ (document.getElementById('page-older'));

fillStatusOptions(statusSelect);
statusSelect.value = filter.status;
repoInput.value = filter.repo;

/** The list URL for a filter; empty fields are left out. @param {Partial<typeof filter>} f */
function listUrl(f) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(f)) if (value) query.set(key, value);
  const text = query.toString();
  return text === '' ? '/' : `/?${text}`;
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  location.assign(listUrl({ status: statusSelect.value, repo: repoInput.value.trim() }));
});
statusSelect.addEventListener('change', () => form.requestSubmit());

/** @type {Map<string, { row: HTMLTableRowElement, key: string }>} */
const rows = new Map();

/** @param {any} job */
function renderRow(job) {
  const repo = repoName(job.repo);
  return /** @type {HTMLTableRowElement} */ (
    el(
      'tr',
      { 'data-job': job.id, 'data-status': job.status },
      el('td', { 'data-label': 'Status' }, statusBadge(job.status)),
      el(
        'td',
        { 'data-label': 'Job' },
        el(
          'a',
          { href: `/jobs/${encodeURIComponent(job.id)}`, class: 'job-link', title: job.id },
          shortId(job.id),
        ),
      ),
      el('td', { 'data-label': 'Repository' }, el('span', { title: job.repo.cloneUrl }, repo)),
      el('td', { 'data-label': 'Ref', class: 'mono' }, job.ref),
      el(
        'td',
        { 'data-label': 'Commit', class: 'mono' },
        el('span', { title: job.sha ?? '' }, shortSha(job.sha)),
      ),
      el('td', { 'data-label': 'Trigger' }, job.trigger),
      el('td', { 'data-label': 'Age' }, ageElement(job.createdAt)),
      el('td', { 'data-label': 'Duration' }, durationElement(job)),
    )
  );
}

/** Updates the table in place, so focus and scroll position survive a refresh. @param {any[]} jobs */
function renderJobs(jobs) {
  const seen = new Set();
  jobs.forEach((job, index) => {
    seen.add(job.id);
    const key = JSON.stringify([job.status, job.startedAt, job.finishedAt, job.sha, job.ref]);
    let entry = rows.get(job.id);
    if (entry === undefined || entry.key !== key) {
      const row = renderRow(job);
      if (entry !== undefined) entry.row.replaceWith(row);
      entry = { row, key };
      rows.set(job.id, entry);
    }
    if (body.children[index] !== entry.row) body.insertBefore(entry.row, body.children[index] ?? null);
  });
  for (const [id, entry] of rows) {
    if (!seen.has(id)) {
      entry.row.remove();
      rows.delete(id);
    }
  }
}

async function refreshJobs() {
  const query = new URLSearchParams();
  if (filter.status) query.set('status', filter.status);
  if (filter.repo) query.set('repo', filter.repo);
  if (filter.cursor) query.set('cursor', filter.cursor);
  try {
    const page = await getJson(`/api/v1/jobs?${query}`);
    renderJobs(page.jobs);
    const filtered = filter.status !== '' || filter.repo !== '';
    showMessage(
      empty,
      page.jobs.length > 0
        ? null
        : filtered
          ? 'No jobs match these filters.'
          : 'No jobs yet. Push to a repository whose webhook points here, or submit one with the raibid CLI.',
    );
    newest.hidden = filter.cursor === '';
    newest.href = listUrl({ status: filter.status, repo: filter.repo });
    older.hidden = page.nextCursor === null;
    if (page.nextCursor !== null) older.href = listUrl({ ...filter, cursor: page.nextCursor });
    showMessage(error, null);
    updated.textContent = `Updated ${formatTime(new Date().toISOString())}`;
  } catch (cause) {
    // A 400 is a filter the server refuses: say why; anything else may pass, so keep trying.
    const refused = cause instanceof ApiError && cause.status === 400;
    const reason = cause instanceof Error ? cause.message : String(cause);
    showMessage(
      error,
      refused ? `Cannot filter like this: ${reason}` : `Cannot load jobs: ${reason}. Retrying…`,
    );
  }
}

startClock();
poll(async () => {
  await Promise.all([refreshJobs(), refreshPanel()]);
}, POLL_MS);
