import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/index.js';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, destination };
}

describe('createLogger', () => {
  it('writes JSON lines with the process name and redacts secrets wherever they sit', () => {
    const { lines, destination } = capture();
    const logger = createLogger({ name: 'raibid-test', level: 'info', destination });
    logger.info(
      {
        token: 'top-level-token',
        config: { GITEA_TOKEN: 'gitea-token', RAIBID_API_TOKEN: 'api-token', PORT: 8080 },
        req: { headers: { authorization: 'Bearer abc', 'x-gitea-signature': 'deadbeef', host: 'x' } },
        gitea: { token: 'nested-token' },
      },
      'started',
    );
    expect(lines).toHaveLength(1);
    const record = JSON.parse(lines[0]!);
    expect(record).toMatchObject({
      name: 'raibid-test',
      msg: 'started',
      token: '***',
      config: { GITEA_TOKEN: '***', RAIBID_API_TOKEN: '***', PORT: 8080 },
      req: { headers: { authorization: '***', 'x-gitea-signature': '***', host: 'x' } },
      gitea: { token: '***' },
    });
    for (const secret of [
      'top-level-token',
      'gitea-token',
      'api-token',
      'Bearer abc',
      'deadbeef',
      'nested-token',
    ]) {
      expect(lines[0]).not.toContain(secret);
    }
  });

  it('respects the level', () => {
    const { lines, destination } = capture();
    const logger = createLogger({ name: 'quiet', level: 'warn', destination });
    logger.info('hidden');
    logger.warn('shown');
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual(['shown']);
  });
});
