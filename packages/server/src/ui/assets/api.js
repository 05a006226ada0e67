// The server's JSON API, as the browser calls it.

export class ApiError extends Error {
  /** @param {number} status @param {string} message */
  constructor(status, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

/** @param {Response} response */
async function errorOf(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && typeof body.error?.message === 'string') message = body.error.message;
  } catch {
    // Not JSON (a proxy's error page): the status line says enough.
  }
  return new ApiError(response.status, message);
}

/** GET a JSON resource. @param {string} path */
export async function getJson(path) {
  const response = await fetch(path, { headers: { accept: 'application/json' } });
  if (!response.ok) throw await errorOf(response);
  return response.json();
}

const TOKEN_KEY = 'raibid.apiToken';

export function storedToken() {
  return localStorage.getItem(TOKEN_KEY);
}

export function forgetToken() {
  localStorage.removeItem(TOKEN_KEY);
}

/**
 * POSTs to an API write endpoint with the bearer token kept in this browser.
 * Without a token, or when the server refuses it (401), `askToken` is asked for
 * one (it resolves null when the user gives up); an accepted token is kept.
 * @param {string} path
 * @param {(rejected: boolean) => Promise<string | null>} askToken
 */
export async function postWithToken(path, askToken) {
  let token = storedToken();
  for (;;) {
    /** @type {Record<string, string>} */
    const headers = { accept: 'application/json' };
    if (token !== null) headers.authorization = `Bearer ${token}`;
    const response = await fetch(path, { method: 'POST', headers });
    if (response.status === 401) {
      // Without a stored token this was the first try (the server may not require one).
      const rejected = token !== null;
      if (rejected) forgetToken();
      token = await askToken(rejected);
      if (token === null) throw new ApiError(401, 'an API token is needed for this');
      continue;
    }
    if (!response.ok) throw await errorOf(response);
    if (token !== null) localStorage.setItem(TOKEN_KEY, token);
    const text = await response.text();
    return text === '' ? null : JSON.parse(text);
  }
}
