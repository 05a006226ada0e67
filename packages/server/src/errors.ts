import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { z } from 'zod';

/** One problem with a request field, in `error.details`. */
export interface FieldIssue {
  /** Where: `body.repo`, `querystring.limit`, `params.id`, `headers.last-event-id`. */
  path: string;
  message: string;
}

/** The body of every error response: `{"error": {"code", "message", "details"?}}`. */
export const errorBodySchema = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
    }),
  })
  .meta({ id: 'Error' });
export type ErrorBody = z.infer<typeof errorBodySchema>;

/** An error a handler throws on purpose: it becomes exactly this response. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: FieldIssue[],
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const notFound = (what: string): ApiError => new ApiError(404, 'not_found', what);

export function errorBody(code: string, message: string, details?: FieldIssue[]): ErrorBody {
  return { error: details ? { code, message, details } : { code, message } };
}

/** Fastify's own request errors, by code → our status, code and a message that says what to do. */
const FASTIFY_ERRORS: Record<string, { status: number; code: string; message: (e: FastifyError) => string }> =
  {
    FST_ERR_CTP_BODY_TOO_LARGE: {
      status: 413,
      code: 'payload_too_large',
      message: () => 'request body is larger than 1 MiB',
    },
    FST_ERR_CTP_INVALID_MEDIA_TYPE: {
      status: 415,
      code: 'unsupported_media_type',
      message: () => 'unsupported Content-Type; send the body as application/json',
    },
    FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
      status: 400,
      code: 'bad_request',
      message: () => 'Content-Length does not match the body',
    },
    FST_ERR_CTP_EMPTY_JSON_BODY: {
      status: 400,
      code: 'invalid_json',
      message: () => 'Content-Type is application/json but the body is empty; send a JSON object',
    },
    FST_ERR_CTP_INVALID_JSON_BODY: {
      status: 400,
      code: 'invalid_json',
      message: () => 'request body is not valid JSON',
    },
    FST_ERR_CTP_INVALID_CHARSET: {
      status: 415,
      code: 'unsupported_media_type',
      message: () => 'unsupported charset; send the body as UTF-8',
    },
  };

function validationIssues(error: FastifyError): FieldIssue[] {
  const where = error.validationContext ?? 'request';
  return (error.validation ?? []).map((issue) => {
    const field = issue.instancePath.replace(/^\//, '').split('/').filter(Boolean).join('.');
    return { path: field ? `${where}.${field}` : where, message: issue.message ?? 'is invalid' };
  });
}

/** Whether an error means Redis cannot be reached (not the request's fault). */
function isRedisUnavailable(error: Error): boolean {
  return (
    error.name === 'MaxRetriesPerRequestError' ||
    /Connection is closed|ECONNREFUSED|ENOENT.*redis|Stream isn't writeable/.test(error.message)
  );
}

/**
 * Errors fastify raises before routing (undecodable URL, over-long path parameter):
 * they skip the error handler, so they get the error shape here.
 */
export function frameworkErrorHandler(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  request.log.info({ code: error.code }, 'request refused before routing');
  const message =
    error.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? 'a path parameter is too long; job ids are 26 characters'
      : 'the URL is not valid (bad percent-encoding?)';
  void reply.code(400).send(errorBody('invalid_request', message));
}

/**
 * Error and not-found handlers that give every failure the contract's error shape.
 * Client errors are logged at info, server errors at error; no stack ever reaches a client.
 */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof ApiError) {
      return reply.code(error.statusCode).send(errorBody(error.code, error.message, error.details));
    }
    if (hasZodFastifySchemaValidationErrors(error) || error.validation) {
      const details = validationIssues(error);
      const first = details[0];
      // `details` keeps the machine path; the message names a URL part the way a user sees it.
      const where = first?.path.startsWith('params.') ? `the ${first.path.slice(7)} in the URL` : first?.path;
      const message = first ? `${where} ${first.message}` : 'request is invalid';
      return reply.code(400).send(errorBody('invalid_request', message, details));
    }
    const known = error.code ? FASTIFY_ERRORS[error.code] : undefined;
    if (known) {
      request.log.info({ code: error.code }, known.message(error));
      return reply.code(known.status).send(errorBody(known.code, known.message(error)));
    }
    if (isRedisUnavailable(error)) {
      request.log.error({ err: error }, 'redis unavailable');
      return reply
        .code(503)
        .send(errorBody('unavailable', 'the job store (Redis) is not reachable; try again shortly'));
    }
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      request.log.info({ code: error.code, status }, error.message);
      return reply.code(status).send(errorBody('bad_request', error.message));
    }
    request.log.error({ err: error }, 'request failed');
    return reply
      .code(500)
      .send(
        errorBody('internal', `internal error; the server log has the details (request id ${request.id})`),
      );
  });

  app.setNotFoundHandler((request, reply) => {
    const path = (request.url.split('?')[0] ?? '/').slice(0, 200);
    return reply
      .code(404)
      .send(errorBody('not_found', `no route ${request.method} ${path}; the API is described at /docs`));
  });
}
