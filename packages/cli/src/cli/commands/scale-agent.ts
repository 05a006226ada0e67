import type { Command } from 'commander';
import { loadKubeConfig, NAMESPACE } from '../../cluster/kube.js';
import { SCALED_JOB, scaleAgent } from '../../cluster/scale-agent.js';
import { EXIT, usageError } from '../../errors.js';
import { printJson } from '../context.js';
import type { Runtime } from '../program.js';

function parseCount(value: string): number {
  const count = Number(value);
  if (!/^\d+$/.test(value) || count < 1 || count > 100) {
    throw usageError(`N must be a whole number from 1 to 100 (got "${value}")`);
  }
  return count;
}

export function registerScaleAgent(program: Command, runtime: Runtime): void {
  program
    .command('scale-agent')
    .description(
      `start N agent Jobs now from ScaledJob ${SCALED_JOB}'s job template, without waiting for KEDA`,
    )
    .argument('[N]', 'how many agent Jobs to start (1-100)', '1')
    .addHelpText(
      'after',
      `
A ScaledJob has no scale subresource (kubectl scale does not work on it): this creates the Jobs as
KEDA does, owned by the ScaledJob. At most its maxReplicaCount agent Jobs run at once. Uses your kubeconfig.`,
    )
    .action(
      runtime.action(async (ctx, count: string) => {
        const requested = parseCount(count);
        const result = await scaleAgent(loadKubeConfig(ctx.io.env), requested);
        if (ctx.json) {
          printJson(ctx, result);
          return EXIT.ok;
        }
        const { created, running, maxReplicaCount } = result;
        if (created.length < requested) {
          ctx.note(
            `${SCALED_JOB} allows ${maxReplicaCount} agent Job(s) at once and ${running} are unfinished: starting ${created.length} of ${requested}`,
          );
        }
        for (const name of created) ctx.print(`created Job ${NAMESPACE}/${name}`);
        if (created.length === 0) ctx.print('no agent Job started');
        return EXIT.ok;
      }),
    );
}
