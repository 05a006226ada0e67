import { createHash, timingSafeEqual } from 'node:crypto';
import type { onRequestHookHandler } from 'fastify';
import { ApiError } from './errors.js';

export interface ApiAuthConfig {
  RAIBID_API_TOKEN?: string | undefined;
  RAIBID_INSECURE_NO_AUTH: boolean;
}

const HOW = 'send the header `Authorization: Bearer <RAIBID_API_TOKEN>`';

/**
 * Equal-length digests compared in constant time, so neither the token's
 * content nor its length leaks through response timing.
 */
export function secretsEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/**
 * An onRequest hook (it runs before the body is even read) that lets a write
 * through only with the right bearer token, or when auth is switched off for local dev.
 */
export function requireApiToken(config: ApiAuthConfig): onRequestHookHandler {
  return async (request) => {
    if (config.RAIBID_INSECURE_NO_AUTH) return;
    const token = config.RAIBID_API_TOKEN;
    if (token === undefined) {
      throw new ApiError(
        401,
        'unauthorized',
        `API writes are disabled: the server has no RAIBID_API_TOKEN set; set it on the server, then ${HOW}`,
      );
    }
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer +(\S+) *$/i.exec(header) : null;
    if (!match) throw new ApiError(401, 'unauthorized', `missing bearer token; ${HOW}`);
    if (!secretsEqual(match[1]!, token))
      throw new ApiError(401, 'unauthorized', `wrong bearer token; ${HOW}`);
  };
}
