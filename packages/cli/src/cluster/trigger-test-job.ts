import type { ApiJob } from '@raibid/common';
import { ApiClient } from '../api/client.js';
import { CliError, EXIT } from '../errors.js';
import type { GiteaClient } from './gitea-client.js';
import type { RaibidSecrets } from './secrets.js';
import { SAMPLE_REPO } from './seed-gitea.js';

export interface TriggerOptions {
  gitea: GiteaClient;
  secrets: RaibidSecrets;
  /** The raibid server (RAIBID_URL / --url). */
  baseUrl: string;
}

/** The API token: RAIBID_API_TOKEN, else the Secret's api-token; says how to give one when neither is there. */
async function apiToken(secrets: RaibidSecrets): Promise<string> {
  try {
    return await secrets.require('api-token');
  } catch (error) {
    if (error instanceof CliError && error.code === 'no_kubeconfig') {
      throw new CliError(
        `no API token: set RAIBID_API_TOKEN, or let raibid read Secret raibid-system/raibid-secrets (${error.message})`,
        EXIT.usage,
        'no_token',
      );
    }
    throw error;
  }
}

/**
 * Submits a job for the sample repository at the commit Gitea has on its main branch. Fails with
 * "run raibid seed-gitea first" when Gitea does not have the sample (seed-gitea has not run).
 */
export async function triggerTestJob(options: TriggerOptions): Promise<{ job: ApiJob; client: ApiClient }> {
  const { gitea } = options;
  const { owner, name, branch } = SAMPLE_REPO;
  const repo = await gitea.repo(owner, name, null);
  const head = repo ? await gitea.branchHead(owner, name, branch, null) : null;
  if (!head) {
    throw new CliError(
      `${owner}/${name} ${repo ? `has no ${branch} branch` : 'does not exist'} in Gitea at ${gitea.url}: run raibid seed-gitea first (in Tilt: the seed-gitea button)`,
      EXIT.usage,
      'not_seeded',
    );
  }
  const client = new ApiClient({ baseUrl: options.baseUrl, token: await apiToken(options.secrets) });
  const job = await client.submit({ repo: `${owner}/${name}`, ref: branch, sha: head });
  return { job, client };
}
