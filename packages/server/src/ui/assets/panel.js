// The queue/agents panel: queue lag, running jobs, recently seen agents.
import { getJson } from './api.js';
import { ageElement, durationElement, el, showMessage } from './dom.js';
import { repoName, shortId } from './format.js';

const QUEUE_FIELDS = [
  ['lag', 'Waiting (lag)'],
  ['pending', 'Claimed by agents'],
  ['running', 'Running'],
  ['agents', 'Agents'],
];

/** Fills the panel's placeholders; resolves once the first refresh is done. */
export async function refreshPanel() {
  const error = /** @type {HTMLElement} */ (document.getElementById('panel-error'));
  try {
    const [queue, running, agents] = await Promise.all([
      getJson('/api/v1/queue'),
      getJson('/api/v1/jobs?status=running&limit=20'),
      getJson('/api/v1/agents'),
    ]);
    renderQueue(queue);
    renderRunning(running.jobs);
    renderAgents(agents.agents);
    renderPods(agents.kubernetes ?? null);
    showMessage(error, null);
  } catch (cause) {
    showMessage(error, `Cannot load the queue: ${cause instanceof Error ? cause.message : cause}`);
  }
}

/** @param {Record<string, unknown>} queue */
function renderQueue(queue) {
  const list = /** @type {HTMLElement} */ (document.getElementById('queue-stats'));
  // The fields above are the CPU pool's; the GPU pool gets its own line, and why it waits if no agent can start.
  const gpu = /** @type {{ lag: number, unavailable: string | null } | undefined} */ (
    /** @type {any} */ (queue).pools?.gpu
  );
  list.replaceChildren(
    ...QUEUE_FIELDS.flatMap(([key, label]) => {
      const value = queue[/** @type {string} */ (key)];
      return [el('dt', {}, label), el('dd', { 'data-stat': key }, typeof value === 'number' ? value : '—')];
    }),
    ...(gpu
      ? [
          el('dt', {}, 'GPU jobs waiting'),
          el(
            'dd',
            { 'data-stat': 'gpu-lag' },
            String(gpu.lag),
            gpu.unavailable
              ? el('span', { class: 'muted', 'data-stat': 'gpu-unavailable' }, ` — ${gpu.unavailable}`)
              : null,
          ),
        ]
      : []),
  );
}

/** @param {any[]} jobs */
function renderRunning(jobs) {
  const list = /** @type {HTMLElement} */ (document.getElementById('running-jobs'));
  if (jobs.length === 0) {
    list.replaceChildren(el('li', { class: 'muted' }, 'Nothing is running.'));
    return;
  }
  list.replaceChildren(
    ...jobs.map((job) =>
      el(
        'li',
        {},
        el('a', { href: `/jobs/${encodeURIComponent(job.id)}` }, `${repoName(job.repo)} ${job.ref}`),
        ' ',
        el('span', { class: 'muted' }, durationElement(job)),
      ),
    ),
  );
}

/** @param {any[]} agents */
function renderAgents(agents) {
  const list = /** @type {HTMLElement} */ (document.getElementById('agents'));
  if (agents.length === 0) {
    list.replaceChildren(el('li', { class: 'muted' }, 'No agent seen in the last hour.'));
    return;
  }
  list.replaceChildren(
    ...agents.map((agent) =>
      el(
        'li',
        {},
        el('span', { class: 'agent-name' }, agent.name),
        ' ',
        agent.jobId
          ? el('a', { href: `/jobs/${encodeURIComponent(agent.jobId)}` }, `job ${shortId(agent.jobId)}`)
          : el('span', { class: 'muted' }, 'idle'),
        el('br'),
        el('span', { class: 'muted' }, 'seen ', agent.lastSeen ? ageElement(agent.lastSeen) : '—'),
      ),
    ),
  );
}

/** Agent pods KEDA started, when the server runs in a cluster. @param {any} kubernetes */
function renderPods(kubernetes) {
  const section = /** @type {HTMLElement} */ (document.getElementById('pods-section'));
  const list = /** @type {HTMLElement} */ (document.getElementById('pods'));
  section.hidden = kubernetes === null;
  if (kubernetes === null) return;
  if (kubernetes.pods.length === 0) {
    list.replaceChildren(el('li', { class: 'muted' }, `No agent pods in ${kubernetes.namespace}.`));
    return;
  }
  list.replaceChildren(
    ...kubernetes.pods.map((/** @type {any} */ pod) =>
      el(
        'li',
        {},
        el('span', { class: 'agent-name' }, pod.name),
        ' ',
        pod.phase,
        pod.startedAt ? el('span', { class: 'muted' }, ' started ', ageElement(pod.startedAt)) : null,
      ),
    ),
  );
}
