import type { Command } from 'commander';
import { GiteaClient } from '../../cluster/gitea-client.js';
import { loadKubeConfig } from '../../cluster/kube.js';
import { RaibidSecrets } from '../../cluster/secrets.js';
import { GITEA_URL_DEFAULT } from '../../cluster/seed-gitea.js';
import { triggerTestJob } from '../../cluster/trigger-test-job.js';
import type { Runtime } from '../program.js';
import { reportNewJob } from './submit.js';

export function registerTriggerTestJob(program: Command, runtime: Runtime): void {
  program
    .command('trigger-test-job')
    .description(
      'run the sample repository raibid/hello (made by seed-gitea); follow its log, exit with its result',
    )
    .option('--gitea-url <url>', `Gitea holding raibid/hello (default: $GITEA_URL or ${GITEA_URL_DEFAULT})`)
    .addHelpText(
      'after',
      `
The API token is RAIBID_API_TOKEN, else api-token of Secret raibid-system/raibid-secrets (your kubeconfig).
Exit code as submit --wait: 0 when the job succeeded, 1 when it did not.`,
    )
    .action(
      runtime.action(async (ctx, options: { giteaUrl?: string }) => {
        const env = ctx.io.env;
        const { job, client } = await triggerTestJob({
          gitea: new GiteaClient(options.giteaUrl ?? (env.GITEA_URL || GITEA_URL_DEFAULT)),
          secrets: new RaibidSecrets(env, () => loadKubeConfig(env)),
          baseUrl: ctx.client.baseUrl,
        });
        return reportNewJob({ ...ctx, client }, job, true);
      }),
    );
}
