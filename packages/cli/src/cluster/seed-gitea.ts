import { chmod, readFile, writeFile } from 'node:fs/promises';
import { CliError, EXIT } from '../errors.js';
import { type GiteaAuth, type GiteaClient, GiteaError, type HookOptions } from './gitea-client.js';
import { NAMESPACE } from './kube.js';
import { stageSample, syncSample } from './sample-repo.js';
import { ENV_OVERRIDE, type RaibidSecrets, SECRET_NAME } from './secrets.js';

/** The Gitea admin, sample repository and webhook target that raibid-ci's tools agree on. */
export const ADMIN_USER = 'raibid';
export const SAMPLE_REPO = { owner: ADMIN_USER, name: 'hello', branch: 'main' } as const;
export const WEBHOOK_URL = 'http://raibid-server.raibid-system.svc:8080/webhooks/gitea';
export const GITEA_URL_DEFAULT = 'http://localhost:3000';
/** Name of the token seed-gitea makes; Gitea shows a token's value only once, so it is replaced when lost. */
export const TOKEN_NAME = 'raibid-ci';
/**
 * The server posts commit statuses (write:repository); agents clone (read:repository); seed-gitea makes
 * the repository (write:user) and, with this token, sets the admin's password after a rotation (write:admin).
 */
export const TOKEN_SCOPES = ['write:repository', 'write:user', 'write:admin'];

export type StepResult = 'created' | 'already there' | 'updated' | 'restarted' | 'skipped';

export interface SeedStep {
  step: string;
  result: StepResult;
  detail?: string;
}

/** Where the Gitea token is kept between runs. */
export interface TokenStore {
  /** For messages, e.g. `raibid-system/raibid-secrets (gitea-token)`. */
  where: string;
  read(): Promise<string | undefined>;
  write(token: string): Promise<void>;
  /** After a new token was written: make its users pick it up (restart the server). */
  afterChange(): Promise<SeedStep | null>;
}

/** The token in Secret raibid-secrets (key gitea-token); a new one restarts raibid-server. */
export function secretTokenStore(secrets: RaibidSecrets): TokenStore {
  const fromEnv = secrets.fromEnv('gitea-token');
  return {
    where: fromEnv ? ENV_OVERRIDE['gitea-token'] : `${NAMESPACE}/${SECRET_NAME} (gitea-token)`,
    read: () => secrets.get('gitea-token'),
    async write(token) {
      if (fromEnv) {
        throw new CliError(
          `${ENV_OVERRIDE['gitea-token']} holds a token Gitea does not accept for ${ADMIN_USER}; unset it (the new token goes into ${NAMESPACE}/${SECRET_NAME}) or pass --token-file`,
          EXIT.usage,
        );
      }
      await secrets.setGiteaToken(token);
    },
    async afterChange() {
      const restarted = await secrets.restartServer();
      return restarted
        ? { step: 'raibid-server', result: 'restarted', detail: 'to read the new GITEA_TOKEN' }
        : {
            step: 'raibid-server',
            result: 'skipped',
            detail: 'not deployed yet; it reads the token when it starts',
          };
    },
  };
}

/** The token in a file of the user's (mode 0600), for use without Kubernetes. */
export function fileTokenStore(file: string): TokenStore {
  return {
    where: file,
    async read() {
      try {
        return (await readFile(file, 'utf8')).trim() || undefined;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw new CliError(`cannot read --token-file ${file}: ${(error as Error).message}`, EXIT.usage);
      }
    },
    async write(token) {
      await writeFile(file, `${token}\n`, { mode: 0o600 });
      await chmod(file, 0o600);
    },
    afterChange: async () => null,
  };
}

export interface SeedOptions {
  gitea: GiteaClient;
  adminPassword: string;
  webhookSecret: string;
  tokens: TokenStore;
  sampleDir: string;
  webhookUrl: string;
  /** Called as each step ends (progress for a long run). */
  onStep(step: SeedStep): void;
}

/** What to do when the admin cannot log in: the gitea pod makes it at start from gitea-admin-password. */
const ADMIN_HINT =
  `the gitea pod creates it when it starts (kubectl -n ${NAMESPACE} logs sts/gitea says whether it did); ` +
  `if gitea-admin-password changed since, restart gitea (kubectl -n ${NAMESPACE} rollout restart sts/gitea) and set it: ` +
  `kubectl -n ${NAMESPACE} exec sts/gitea -- sh -c 'gitea -c "$GITEA_APP_INI" admin user change-password --username ${ADMIN_USER} --password "$GITEA_ADMIN_PASSWORD" --must-change-password=false'`;

/** A token that logs in as the admin, or null. */
async function validToken(gitea: GiteaClient, token: string | undefined): Promise<string | null> {
  if (!token) return null;
  try {
    const user = await gitea.currentUser({ token });
    return user.login === ADMIN_USER ? token : null;
  } catch (error) {
    if (error instanceof GiteaError && error.status === 401) return null;
    throw error;
  }
}

/** Step 1: the admin logs in with the password from the Secret (set again with a stored token after a rotation). */
async function ensureAdmin(options: SeedOptions, basic: GiteaAuth): Promise<SeedStep> {
  const { gitea } = options;
  const step = `admin ${ADMIN_USER}`;
  try {
    const user = await gitea.currentUser(basic);
    if (!user.is_admin) {
      throw new CliError(
        `Gitea user ${ADMIN_USER} exists but is not an admin: make it one (Site Administration > User Accounts) or delete it and run seed-gitea again`,
        EXIT.usage,
      );
    }
    return { step, result: 'already there', detail: 'logs in' };
  } catch (error) {
    if (!(error instanceof GiteaError)) throw error;
    if (error.status === 403 && /change your password/i.test(error.message)) {
      throw new CliError(
        `Gitea wants ${ADMIN_USER} to change its password first: kubectl -n ${NAMESPACE} exec sts/gitea -- gitea admin user must-change-password --unset ${ADMIN_USER}`,
        EXIT.usage,
      );
    }
    if (error.status !== 401) throw error;
  }
  // The password does not work: after `secrets.sh --rotate gitea-admin-password`, a stored token sets it.
  const token = await validToken(gitea, await options.tokens.read());
  if (!token) {
    throw new CliError(
      `the Gitea admin ${ADMIN_USER} cannot log in with gitea-admin-password (it does not exist yet, or has another password): ${ADMIN_HINT}`,
      EXIT.usage,
      'no_admin',
    );
  }
  await gitea.setPassword(ADMIN_USER, options.adminPassword, { token });
  await gitea.currentUser(basic);
  return { step, result: 'updated', detail: 'password set to gitea-admin-password' };
}

/** Step 2: a token of the admin's, kept in the token store. */
async function ensureToken(
  options: SeedOptions,
  basic: GiteaAuth,
): Promise<{ steps: SeedStep[]; token: string }> {
  const { gitea, tokens } = options;
  const stored = await validToken(gitea, await tokens.read());
  if (stored)
    return { steps: [{ step: 'token', result: 'already there', detail: tokens.where }], token: stored };
  // Gitea shows a token's value only when it is made: one whose value was lost is replaced.
  const existing = await gitea.listTokens(ADMIN_USER, basic);
  if (existing.some((t) => t.name === TOKEN_NAME)) await gitea.deleteToken(ADMIN_USER, TOKEN_NAME, basic);
  const token = await gitea.createToken(ADMIN_USER, TOKEN_NAME, TOKEN_SCOPES, basic);
  await tokens.write(token);
  const steps: SeedStep[] = [{ step: 'token', result: 'created', detail: `stored in ${tokens.where}` }];
  const after = await tokens.afterChange();
  if (after) steps.push(after);
  return { steps, token };
}

/** Step 3 and 4: the repository, and examples/hello on its main branch. */
async function ensureSample(
  options: SeedOptions,
  auth: GiteaAuth,
  token: string,
  record: (step: SeedStep) => void,
): Promise<void> {
  const { gitea } = options;
  const { owner, name, branch } = SAMPLE_REPO;
  if (await gitea.repo(owner, name, auth))
    record({ step: `repository ${owner}/${name}`, result: 'already there' });
  else {
    await gitea.createUserRepo(name, 'raibid-ci sample project (examples/hello)', auth);
    record({ step: `repository ${owner}/${name}`, result: 'created' });
  }

  const sample = await stageSample(options.sampleDir);
  try {
    const remote = `${gitea.url}/${owner}/${name}.git`;
    const basic = Buffer.from(`${ADMIN_USER}:${token}`).toString('base64');
    const { result, commit } = await syncSample(sample, remote, branch, `Basic ${basic}`);
    const detail =
      result === 'already there'
        ? commit.slice(0, 7)
        : `pushed ${commit.slice(0, 7)} from ${options.sampleDir}`;
    record({ step: `sample code on ${branch}`, result, detail });
  } finally {
    await sample.dispose();
  }
}

/** Step 5: the webhook to the server, active, for pushes and pull requests, signed with webhook-secret. */
async function ensureWebhook(options: SeedOptions, auth: GiteaAuth): Promise<SeedStep> {
  const { gitea, webhookUrl } = options;
  const { owner, name } = SAMPLE_REPO;
  const wanted: HookOptions = {
    type: 'gitea',
    // Gitea's API defaults `active` to false: a hook created without it never fires.
    active: true,
    events: ['push', 'pull_request'],
    branch_filter: '*',
    config: { url: webhookUrl, content_type: 'json', secret: options.webhookSecret },
  };
  const step = `webhook -> ${webhookUrl}`;
  const hook = (await gitea.listHooks(owner, name, auth)).find((h) => h.config.url === webhookUrl);
  if (!hook) {
    await gitea.createHook(owner, name, wanted, auth);
    return { step, result: 'created' };
  }
  // Gitea never shows a hook's secret: one made by seed-gitea is trusted to carry webhook-secret.
  const asWanted =
    hook.type === 'gitea' &&
    hook.active &&
    hook.config.content_type === 'json' &&
    wanted.events.every((event) => hook.events.includes(event));
  if (asWanted) return { step, result: 'already there' };
  const { type: _type, ...edit } = wanted;
  await gitea.editHook(owner, name, hook.id, edit, auth);
  return { step, result: 'updated', detail: 'active, push and pull_request, json' };
}

/**
 * Makes Gitea ready for raibid-ci, idempotently: the admin logs in, an admin token is stored, the
 * sample repository holds examples/hello, and its webhook points at the server. Each step reports
 * `created`, `updated` or `already there`; a second run reports no change.
 */
export async function seedGitea(options: SeedOptions): Promise<SeedStep[]> {
  const steps: SeedStep[] = [];
  const record = (step: SeedStep) => {
    steps.push(step);
    options.onStep(step);
  };
  const basic: GiteaAuth = { basic: { user: ADMIN_USER, password: options.adminPassword } };
  record(await ensureAdmin(options, basic));
  const { steps: tokenSteps, token } = await ensureToken(options, basic);
  for (const step of tokenSteps) record(step);
  const auth: GiteaAuth = { token };
  await ensureSample(options, auth, token, record);
  record(await ensureWebhook(options, auth));
  return steps;
}
