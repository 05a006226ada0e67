// Calls `refresh` now and every `everyMs` while the page is visible; at once when it becomes visible again.

/** @param {() => Promise<void>} refresh @param {number} everyMs */
export function poll(refresh, everyMs) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  let running = false;
  const tick = async () => {
    clearTimeout(timer);
    if (running) return;
    running = true;
    try {
      await refresh();
    } finally {
      running = false;
      if (document.visibilityState === 'visible') timer = setTimeout(tick, everyMs);
    }
  };
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') tick();
  });
  tick();
}
