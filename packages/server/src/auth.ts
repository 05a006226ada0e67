import { createHash, timingSafeEqual } from 'node:crypto';
import type { onRequestHookHandler } from 'fastify';
import { ApiError } from './errors.js';

export interface ApiAuthConfig {
  RAIBID_API_TOKEN?: string | undefined;
  RAIBID_INSECURE_NO_AUTH: boolean;
}

const HOW = 'send the header `Authorization: Bearer <RAIBID_API_TOKEN>`';

const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();

/**
 * Equal-length digests compared in constant time, so neither the token's
 * content nor its length leaks through response timing.
 */
function matchesDigest(given: string, expectedDigest: Buffer): boolean {
  return timingSafeEqual(sha256(given), expectedDigest);
}

/**
 * An onRequest hook (it runs before the body is even read) that lets a write
 * through only with the right bearer token, or when auth is switched off for local dev.
 */
export function requireApiToken(config: ApiAuthConfig): onRequestHookHandler {
  const token = config.RAIBID_API_TOKEN;
  // The token's digest once, not per request.
  const expectedDigest = token === undefined ? null : sha256(token);
  return (request, _reply, done) => {
    if (config.RAIBID_INSECURE_NO_AUTH) return done();
    if (expectedDigest === null) {
      return done(
        new ApiError(
          401,
          'unauthorized',
          `API writes are disabled: the server has no RAIBID_API_TOKEN set; set it on the server, then ${HOW}`,
        ),
      );
    }
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer +(\S+) *$/i.exec(header) : null;
    if (!match) return done(new ApiError(401, 'unauthorized', `missing bearer token; ${HOW}`));
    if (!matchesDigest(match[1]!, expectedDigest)) {
      return done(new ApiError(401, 'unauthorized', `wrong bearer token; ${HOW}`));
    }
    done();
  };
}
