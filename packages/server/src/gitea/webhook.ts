// Gitea webhook deliveries → what to do about them. Only the fields raibid-ci
// reads are parsed (docs/gitea.md lists them); the rest of Gitea's payload is ignored.
import { createHmac, timingSafeEqual } from 'node:crypto';
import {
  isValidRefName,
  type NewJob,
  parseRepoSpec,
  type RepoRef,
  RepoSpecError,
  shaSchema,
} from '@raibid/common';
import { z } from 'zod';

/** `hex(HMAC-SHA256(secret, raw body))` as Gitea sends it in `X-Gitea-Signature`. */
export function giteaSignature(secret: string, body: Buffer): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

/** Constant-time check of `X-Gitea-Signature` against the raw body. */
export function verifyGiteaSignature(secret: string, body: Buffer, header: string | undefined): boolean {
  if (!header) return false;
  const expected = Buffer.from(giteaSignature(secret, body), 'utf8');
  const given = Buffer.from(header.trim().toLowerCase(), 'utf8');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const ZERO_SHA = '0'.repeat(40);

const repositorySchema = z.object({
  name: z.string(),
  owner: z.object({ login: z.string() }),
  clone_url: z.string(),
});

const pushSchema = z.object({
  ref: z.string(),
  after: z.string(),
  head_commit: z.object({ id: shaSchema }).nullable().optional(),
  repository: repositorySchema,
});

const pullRequestSchema = z.object({
  action: z.string(),
  number: z.number().int().positive(),
  pull_request: z.object({ head: z.object({ sha: shaSchema }) }),
  repository: repositorySchema,
});

/** Pull-request actions that build the head commit. Gitea says `synchronized`, not GitHub's `synchronize`. */
export const BUILT_PR_ACTIONS = ['opened', 'synchronized', 'reopened'] as const;

export type DeliveryDecision =
  | { kind: 'job'; job: NewJob }
  | { kind: 'ignored'; reason: string }
  | { kind: 'ping' };

/** The delivery's body does not have what its event needs (after a valid signature). */
export class WebhookPayloadError extends Error {
  override name = 'WebhookPayloadError';
  constructor(
    message: string,
    readonly issues: { path: string; message: string }[] = [],
  ) {
    super(message);
  }
}

export interface WebhookOptions {
  /** When set, jobs clone from here (the in-cluster address), not the payload's ROOT_URL-based URL. */
  giteaUrl?: string | undefined;
}

function parse<S extends z.ZodType>(schema: S, body: unknown, event: string): z.infer<S> {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({
    path: ['body', ...issue.path].join('.'),
    message: issue.message,
  }));
  throw new WebhookPayloadError(
    `"${event}" payload is not what Gitea sends: ${issues[0]?.path} ${issues[0]?.message}`,
    issues,
  );
}

/**
 * The base repository of the delivery. With GITEA_URL the clone URL is built from it
 * (payload URLs follow Gitea's ROOT_URL, which agents in the cluster may not reach).
 */
function repoOf(repository: z.infer<typeof repositorySchema>, options: WebhookOptions): RepoRef {
  try {
    if (options.giteaUrl) {
      return parseRepoSpec(`${repository.owner.login}/${repository.name}`, { giteaUrl: options.giteaUrl });
    }
    const repo = parseRepoSpec(repository.clone_url);
    return { ...repo, owner: repository.owner.login, name: repository.name };
  } catch (error) {
    if (error instanceof RepoSpecError) {
      throw new WebhookPayloadError(error.message, [{ path: 'body.repository', message: error.message }]);
    }
    throw error;
  }
}

function decidePush(body: unknown, options: WebhookOptions): DeliveryDecision {
  const push = parse(pushSchema, body, 'push');
  if (push.after === ZERO_SHA) return { kind: 'ignored', reason: `${push.ref} was deleted` };
  const sha = shaSchema.safeParse(push.after);
  if (!sha.success) {
    throw new WebhookPayloadError('"push" payload: after is not a 40-hex commit id', [
      { path: 'body.after', message: sha.error.issues[0]?.message ?? 'invalid' },
    ]);
  }
  if (!isValidRefName(push.ref)) {
    throw new WebhookPayloadError('"push" payload: ref is not a valid git ref name', [
      { path: 'body.ref', message: 'is not a valid git ref name' },
    ]);
  }
  const repo = repoOf(push.repository, options);
  if (push.ref.startsWith('refs/heads/')) {
    return { kind: 'job', job: { repo, ref: push.ref, sha: sha.data, trigger: 'push' } };
  }
  if (push.ref.startsWith('refs/tags/')) {
    // An annotated tag's `after` is the tag object; head_commit is the commit it points to.
    const commit = push.head_commit?.id ?? sha.data;
    return { kind: 'job', job: { repo, ref: push.ref, sha: commit, trigger: 'tag' } };
  }
  return { kind: 'ignored', reason: `push to ${push.ref} is neither a branch nor a tag` };
}

function decidePullRequest(body: unknown, options: WebhookOptions): DeliveryDecision {
  const event = parse(pullRequestSchema, body, 'pull_request');
  if (!(BUILT_PR_ACTIONS as readonly string[]).includes(event.action)) {
    return {
      kind: 'ignored',
      reason: `pull_request action "${event.action}" does not start a job (only ${BUILT_PR_ACTIONS.join(', ')})`,
    };
  }
  // Gitea keeps refs/pull/N/head in the base repo, forks included: clone the base, build the head sha.
  return {
    kind: 'job',
    job: {
      repo: repoOf(event.repository, options),
      ref: `refs/pull/${event.number}/head`,
      sha: event.pull_request.head.sha,
      trigger: 'pull_request',
    },
  };
}

/** What to do with a delivery whose signature has been verified. */
export function decideDelivery(event: string, body: unknown, options: WebhookOptions = {}): DeliveryDecision {
  switch (event) {
    case 'push':
      return decidePush(body, options);
    case 'pull_request':
      return decidePullRequest(body, options);
    case 'ping':
      return { kind: 'ping' };
    default:
      return {
        kind: 'ignored',
        reason: `event "${event}" does not start a job (only push and pull_request)`,
      };
  }
}
