import path from 'node:path';
import type { Command } from 'commander';
import { GiteaClient } from '../../cluster/gitea-client.js';
import { loadKubeConfig } from '../../cluster/kube.js';
import { findSampleDir } from '../../cluster/sample-repo.js';
import { RaibidSecrets } from '../../cluster/secrets.js';
import {
  fileTokenStore,
  GITEA_URL_DEFAULT,
  type SeedStep,
  secretTokenStore,
  seedGitea,
  WEBHOOK_URL,
} from '../../cluster/seed-gitea.js';
import { EXIT } from '../../errors.js';
import { type CommandContext, printJson } from '../context.js';
import type { Runtime } from '../program.js';

interface SeedGiteaOptions {
  giteaUrl?: string;
  tokenFile?: string;
  sample?: string;
  webhookUrl: string;
}

/** `admin raibid: already there (logs in)`, the result colored by whether something changed. */
function stepLine(ctx: CommandContext, { step, result, detail }: SeedStep): string {
  const color = result === 'already there' || result === 'skipped' ? ctx.out.dim : ctx.out.green;
  return `${step}: ${color(result)}${detail ? ctx.out.dim(` (${detail})`) : ''}`;
}

export function registerSeedGitea(program: Command, runtime: Runtime): void {
  program
    .command('seed-gitea')
    .description(
      'make Gitea ready (idempotent): admin login, its token in the Secret, repo raibid/hello from examples/hello, the webhook to the server',
    )
    .option('--gitea-url <url>', `Gitea to seed (default: $GITEA_URL or ${GITEA_URL_DEFAULT})`)
    .option(
      '--token-file <file>',
      'keep the Gitea token in this file (0600) instead of the Kubernetes Secret',
    )
    .option(
      '--sample <dir>',
      'the project to push as raibid/hello (default: examples/hello of this checkout)',
    )
    .option('--webhook-url <url>', 'where the webhook delivers', WEBHOOK_URL)
    .addHelpText(
      'after',
      `
Secrets come from Secret raibid-system/raibid-secrets (your kubeconfig), each overridden by the
environment: RAIBID_GITEA_ADMIN_PASSWORD, GITEA_WEBHOOK_SECRET, GITEA_TOKEN. Without Kubernetes, set the
first two and pass --token-file.`,
    )
    .action(
      runtime.action(async (ctx, options: SeedGiteaOptions) => {
        const env = ctx.io.env;
        const gitea = new GiteaClient(options.giteaUrl ?? (env.GITEA_URL || GITEA_URL_DEFAULT));
        const secrets = new RaibidSecrets(env, () => loadKubeConfig(env));
        const sampleDir = options.sample ? path.resolve(ctx.io.cwd, options.sample) : findSampleDir();
        const version = await gitea.version();
        ctx.note(`Gitea ${version} at ${gitea.url}`);
        const steps = await seedGitea({
          gitea,
          adminPassword: await secrets.require('gitea-admin-password'),
          webhookSecret: await secrets.require('webhook-secret'),
          tokens: options.tokenFile
            ? fileTokenStore(path.resolve(ctx.io.cwd, options.tokenFile))
            : secretTokenStore(secrets),
          sampleDir,
          webhookUrl: options.webhookUrl,
          onStep: (step) => {
            if (!ctx.json) ctx.print(stepLine(ctx, step));
          },
        });
        const changed = steps.filter((s) => s.result !== 'already there' && s.result !== 'skipped').length;
        if (ctx.json) printJson(ctx, { gitea: gitea.url, version, steps, changed: changed > 0 });
        else if (changed === 0) ctx.print('nothing changed: Gitea was seeded already');
        else ctx.print(`seeded Gitea at ${gitea.url}: ${changed} change(s)`);
        return EXIT.ok;
      }),
    );
}
