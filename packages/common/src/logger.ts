import { type Logger, type LoggerOptions, pino } from 'pino';

/** Paths pino replaces with `***` wherever they appear in a log record. */
export const REDACTED_PATHS = [
  'token',
  'secret',
  'password',
  'authorization',
  '*.token',
  '*.secret',
  '*.password',
  '*.authorization',
  'req.headers.authorization',
  'req.headers["x-gitea-signature"]',
  'req.headers.cookie',
  'config.RAIBID_API_TOKEN',
  'config.GITEA_TOKEN',
  'config.GITEA_WEBHOOK_SECRET',
  'config.GIT_TOKEN',
  'env.GITEA_TOKEN',
  'env.GIT_TOKEN',
];

export interface LoggerFactoryOptions {
  name: string;
  level?: string;
  /** Where to write (defaults to stdout); tests pass a stream to inspect output. */
  destination?: NodeJS.WritableStream;
}

/** One pino logger per process, JSON lines, with secrets redacted. */
export function createLogger({ name, level = 'info', destination }: LoggerFactoryOptions): Logger {
  const options: LoggerOptions = {
    name,
    level,
    redact: { paths: REDACTED_PATHS, censor: '***' },
    base: { pid: process.pid },
  };
  return destination ? pino(options, destination as pino.DestinationStream) : pino(options);
}

export type { Logger };
