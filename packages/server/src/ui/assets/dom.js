// Small DOM helpers. Text always goes in as text nodes, never as HTML.
import { formatAge, formatDuration, formatTime, JOB_STATUSES, spanMs } from './format.js';

/**
 * `el('a', { href: '/', class: 'x' }, 'text', child)`. Attribute values and
 * children are set as attributes and text nodes; `null`/`false` attributes are skipped.
 * @param {string} tag
 * @param {Record<string, string | number | boolean | null | undefined>} [attrs]
 * @param {...(Node | string | number | null | undefined)} children
 * @returns {HTMLElement}
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === 'object' ? child : String(child));
  }
  return node;
}

const STATUS_ICONS = {
  queued: '◷',
  running: '●',
  succeeded: '✓',
  failed: '✗',
  cancelled: '⊘',
  error: '!',
  pending: '◷',
  skipped: '↷',
};

/** A status as text with an icon; the colour is decoration only. @param {string} status */
export function statusBadge(status) {
  const known = Object.hasOwn(STATUS_ICONS, status) ? status : 'unknown';
  const icon = STATUS_ICONS[/** @type {keyof typeof STATUS_ICONS} */ (known)] ?? '?';
  return el(
    'span',
    { class: `badge badge-${known}` },
    el('span', { 'aria-hidden': 'true' }, icon),
    ` ${status}`,
  );
}

/** `<time>` showing "3m ago", kept current by startClock(). @param {string} iso */
export function ageElement(iso) {
  return el('time', { datetime: iso, title: formatTime(iso), 'data-age': '' }, formatAge(iso, Date.now()));
}

/**
 * A duration, kept current by startClock() while the span is still open.
 * @param {{ startedAt: string | null, finishedAt: string | null }} span
 */
export function durationElement(span) {
  if (span.startedAt === null) return el('span', { class: 'muted' }, '—');
  const node = el('span', { 'data-started': span.startedAt });
  if (span.finishedAt !== null) node.setAttribute('data-finished', span.finishedAt);
  node.textContent = durationText(node);
  return node;
}

/** @param {Element} node */
function durationText(node) {
  const span = {
    startedAt: node.getAttribute('data-started'),
    finishedAt: node.getAttribute('data-finished'),
  };
  return formatDuration(spanMs(span, Date.now()) ?? 0);
}

/** Updates relative ages and running durations once a second. */
export function startClock() {
  setInterval(() => {
    const now = Date.now();
    for (const node of document.querySelectorAll('time[data-age]')) {
      const iso = node.getAttribute('datetime');
      if (iso !== null) node.textContent = formatAge(iso, now);
    }
    for (const node of document.querySelectorAll('[data-started]:not([data-finished])')) {
      node.textContent = durationText(node);
    }
  }, 1000);
}

/** Options of a status `<select>`: "any" plus every job status. @param {HTMLSelectElement} select */
export function fillStatusOptions(select) {
  select.append(el('option', { value: '' }, 'any'));
  for (const status of JOB_STATUSES) select.append(el('option', { value: status }, status));
}

/**
 * Shows a message in an element, or hides it for null.
 * @param {HTMLElement} node
 * @param {string | null} message
 */
export function showMessage(node, message) {
  node.hidden = message === null;
  node.textContent = message ?? '';
}
