import type { Command } from 'commander';
import { loadKubeConfig } from '../../cluster/kube.js';
import { serverLogs } from '../../cluster/server-logs.js';
import { CliError, EXIT, usageError } from '../../errors.js';
import { printJson } from '../context.js';
import type { Runtime } from '../program.js';

function parseTail(value: string): number {
  const tail = Number(value);
  if (!/^\d+$/.test(value) || tail < 1)
    throw usageError(`--tail must be a whole number above 0 (got "${value}")`);
  return tail;
}

export function registerServerLogs(program: Command, runtime: Runtime): void {
  program
    .command('server-logs')
    .description("the raibid-server pods' recent log lines (Kubernetes API, your kubeconfig)")
    .option('--tail <N>', 'lines per pod', '100')
    .action(
      runtime.action(async (ctx, options: { tail: string }) => {
        const logs = await serverLogs(loadKubeConfig(ctx.io.env), parseTail(options.tail));
        const readable = logs.filter((log) => log.lines !== null);
        if (ctx.json) printJson(ctx, { pods: logs });
        else {
          for (const log of logs) {
            if (logs.length > 1 || log.error) ctx.note(`==> pod ${log.pod} (${log.phase})`);
            if (log.error) ctx.note(`raibid: ${log.error}`);
            // With several pods each line says whose it is.
            for (const line of log.lines ?? []) ctx.print(logs.length > 1 ? `[${log.pod}] ${line}` : line);
          }
        }
        if (readable.length === 0) {
          const reasons = logs.map((log) => log.error).join('; ');
          throw new CliError(`cannot read any raibid-server log: ${reasons}`, EXIT.unavailable, 'no_logs');
        }
        return EXIT.ok;
      }),
    );
}
