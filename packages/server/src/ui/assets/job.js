// The job page (`/jobs/:id`): status and timing, steps, the live log, cancel and retry.
import { ApiError, forgetToken, getJson, postWithToken, storedToken } from './api.js';
import { ageElement, durationElement, el, showMessage, startClock, statusBadge } from './dom.js';
import { formatTime, isFinal, repoName, shortSha } from './format.js';
import { LogView, stepAnchor } from './log-view.js';
import { poll } from './poll.js';

const RECONNECT_MS = 3000;
/** The log stream reports status changes; steps and agent change in between, so the job is re-read this often. */
const JOB_POLL_MS = 3000;

const jobId = decodeURIComponent(location.pathname.split('/')[2] ?? '');
const byId = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

const title = byId('job-title');
const statusBox = byId('job-status');
const facts = byId('job-facts');
const jobError = byId('job-error');
const steps = byId('steps');
const cancelButton = /** @type {HTMLButtonElement} */ (byId('cancel'));
const retryButton = /** @type {HTMLButtonElement} */ (byId('retry'));
const actionMessage = byId('action-message');
const followButton = /** @type {HTMLButtonElement} */ (byId('follow'));
const logState = byId('log-state');
const logError = byId('log-error');
const tokenDialog = /** @type {HTMLDialogElement} */ (byId('token-dialog'));
const forgetButton = /** @type {HTMLButtonElement} */ (byId('forget-token'));

const logUrl = `/api/v1/jobs/${encodeURIComponent(jobId)}/logs`;
byId('log-links').append(el('a', { href: logUrl, download: `raibid-${jobId}.log` }, 'Download raw log'));
byId('crumb-id').textContent = jobId;

const logView = new LogView(byId('log'), byId('log-placeholder'), (following) => {
  followButton.setAttribute('aria-pressed', String(following));
});
followButton.setAttribute('aria-pressed', String(logView.following));
followButton.addEventListener('click', () => logView.setFollowing(!logView.following));

/** @type {any} */
let job = null;
let ended = false;

/** @param {string} label @param {Node | string} value */
function fact(label, value) {
  return [el('dt', {}, label), el('dd', {}, value)];
}

/** @param {string | null} iso */
function timeFact(iso) {
  if (iso === null) return '—';
  return el('span', {}, formatTime(iso), ' (', ageElement(iso), ')');
}

/** @param {any} next */
function renderJob(next) {
  // A poll answered before the final status event arrived is stale: a job never leaves a final status.
  if (job !== null && isFinal(job.status) && !isFinal(next.status)) return;
  const statusChanged = job === null || job.status !== next.status;
  job = next;
  const repo = repoName(job.repo);
  title.textContent = `${repo} · ${job.ref}`;
  document.title = `${job.status} · ${repo} ${job.ref} — raibid-ci`;
  // Only a real change goes into the live region, so screen readers announce transitions, not refreshes.
  if (statusChanged) {
    statusBox.replaceChildren('Status: ', statusBadge(job.status));
    // "Cancellation requested." and the like are answered by the new status.
    if (job.status !== 'queued' && job.status !== 'running') showMessage(actionMessage, null);
  }
  facts.replaceChildren(
    ...fact('Repository', el('span', { title: job.repo.cloneUrl }, repo)),
    ...fact('Ref', el('span', { class: 'mono' }, job.ref)),
    ...fact('Commit', el('span', { class: 'mono', title: job.sha ?? 'not resolved yet' }, shortSha(job.sha))),
    ...fact('Trigger', job.trigger),
    ...fact('Pool', job.pool ?? 'cpu'),
    ...fact('Attempt', String(job.attempts)),
    ...fact('Agent', job.agent ?? '—'),
    ...fact('Created', timeFact(job.createdAt)),
    ...fact('Started', timeFact(job.startedAt)),
    ...fact('Finished', timeFact(job.finishedAt)),
    ...fact('Duration', durationElement(job)),
    ...(job.exitCode === null ? [] : fact('Exit code', String(job.exitCode))),
    ...(job.retryOf === null
      ? []
      : fact(
          'Retry of',
          el('a', { href: `/jobs/${encodeURIComponent(job.retryOf)}`, class: 'mono' }, job.retryOf),
        )),
  );
  showMessage(jobError, job.error);
  renderSteps(job.steps);
  cancelButton.hidden = isFinal(job.status);
  retryButton.hidden = !isFinal(job.status);
}

/** @param {any[]} list */
function renderSteps(list) {
  if (list.length === 0) {
    steps.replaceChildren(
      el('li', { class: 'muted' }, isFinal(job.status) ? 'No steps ran.' : 'Not started yet.'),
    );
    return;
  }
  steps.replaceChildren(
    ...list.map((step) =>
      el(
        'li',
        { class: `step step-${step.status}` },
        statusBadge(step.status),
        ' ',
        step.startedAt === null
          ? el('span', { class: 'step-name' }, step.name)
          : el('a', { class: 'step-name', href: `#${stepAnchor(step.name)}` }, step.name),
        ' ',
        el('span', { class: 'muted' }, durationElement(step)),
        step.exitCode === null || step.exitCode === 0
          ? null
          : el('span', { class: 'muted' }, ` exit ${step.exitCode}`),
      ),
    ),
  );
}

/** @param {string} text */
function setLogState(text) {
  logState.textContent = text;
}

function finishLog() {
  ended = true;
  setLogState('complete');
  followButton.hidden = true;
  const placeholder = byId('log-placeholder');
  placeholder.textContent = 'This job wrote no output.';
}

function openStream() {
  const source = new EventSource(`${logUrl}?follow=1`);
  source.addEventListener('open', () => {
    showMessage(logError, null);
    setLogState('live');
  });
  source.addEventListener('log', (event) => logView.add(JSON.parse(event.data)));
  source.addEventListener('status', (event) => renderJob(JSON.parse(event.data)));
  source.addEventListener('end', () => {
    source.close();
    finishLog();
    // The final record (steps and exit code included).
    void refreshJob();
  });
  source.addEventListener('error', () => {
    if (ended) return;
    if (source.readyState === EventSource.CLOSED) {
      // The server refused the stream (not a dropped connection, which EventSource retries itself).
      setLogState('disconnected');
      showMessage(logError, `The log stream failed; retrying in ${RECONNECT_MS / 1000} s.`);
      setTimeout(openStream, RECONNECT_MS);
    } else {
      setLogState('reconnecting…');
    }
  });
}

/** Asks for the API token in a dialog; null when the user cancels. @param {boolean} rejected */
function askToken(rejected) {
  const form = /** @type {HTMLFormElement} */ (tokenDialog.querySelector('form'));
  const input = /** @type {HTMLInputElement} */ (form.elements.namedItem('token'));
  showMessage(byId('token-rejected'), rejected ? 'The server refused the stored token.' : null);
  input.value = '';
  tokenDialog.returnValue = '';
  tokenDialog.showModal();
  return new Promise((resolve) => {
    tokenDialog.addEventListener(
      'close',
      () =>
        resolve(tokenDialog.returnValue === 'save' && input.value.trim() !== '' ? input.value.trim() : null),
      { once: true },
    );
  });
}

function updateForgetButton() {
  forgetButton.hidden = storedToken() === null;
}

/**
 * Runs an API write from a button: disabled while it runs, result or error in the message line.
 * @param {HTMLButtonElement} button
 * @param {string} busy
 * @param {() => Promise<string>} action
 */
async function act(button, busy, action) {
  button.disabled = true;
  showMessage(actionMessage, busy);
  try {
    showMessage(actionMessage, await action());
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    showMessage(actionMessage, `Failed: ${reason}`);
  } finally {
    button.disabled = false;
    updateForgetButton();
  }
}

cancelButton.addEventListener('click', () =>
  act(cancelButton, 'Cancelling…', async () => {
    await postWithToken(`/api/v1/jobs/${encodeURIComponent(jobId)}/cancel`, askToken);
    return 'Cancellation requested.';
  }),
);
retryButton.addEventListener('click', () =>
  act(retryButton, 'Starting a new run…', async () => {
    const retried = await postWithToken(`/api/v1/jobs/${encodeURIComponent(jobId)}/retry`, askToken);
    location.assign(`/jobs/${encodeURIComponent(retried.id)}`);
    return `Started job ${retried.id}.`;
  }),
);
forgetButton.addEventListener('click', () => {
  forgetToken();
  updateForgetButton();
  showMessage(actionMessage, 'The API token was removed from this browser.');
});

async function refreshJob() {
  try {
    renderJob(await getJson(`/api/v1/jobs/${encodeURIComponent(jobId)}`));
  } catch {
    // The next poll tries again; the log stream keeps the status current meanwhile.
  }
}

async function main() {
  updateForgetButton();
  startClock();
  try {
    renderJob(await getJson(`/api/v1/jobs/${encodeURIComponent(jobId)}`));
  } catch (cause) {
    const missing = cause instanceof ApiError && cause.status === 404;
    title.textContent = missing ? 'Job not found' : 'Cannot load this job';
    document.title = `${title.textContent} — raibid-ci`;
    showMessage(
      jobError,
      missing
        ? `There is no job ${jobId}. It may have expired; the job list has the recent ones.`
        : `${cause instanceof Error ? cause.message : cause}. Reload to try again.`,
    );
    byId('job-body').hidden = true;
    return;
  }
  openStream();
  poll(async () => {
    if (!isFinal(job.status)) await refreshJob();
  }, JOB_POLL_MS);
}

main();
