import type { AgentInfo } from '@raibid/common';
import type { Command } from 'commander';
import { EXIT } from '../../errors.js';
import { printJson } from '../context.js';
import { ago, type Column, table } from '../format.js';
import type { Runtime } from '../program.js';

const QUEUE_FIELDS = [
  ['lag', 'queued jobs no agent has taken yet (what the autoscaler scales on)'],
  ['pending', 'jobs taken by an agent and not finished'],
  ['running', 'jobs running'],
  ['agents', 'agents that heart-beat recently'],
] as const;

export function registerStatus(program: Command, runtime: Runtime): void {
  program
    .command('queue')
    .description('queue depth and agents: lag, pending, running, agents; per pool (cpu, gpu)')
    .action(
      runtime.action(async (ctx) => {
        const queue = await ctx.client.queue();
        if (ctx.json) {
          printJson(ctx, queue);
          return EXIT.ok;
        }
        const numbers = QUEUE_FIELDS.map(([key]) => String(queue[key]));
        const numberWidth = Math.max(...numbers.map((n) => n.length));
        QUEUE_FIELDS.forEach(([key, meaning], i) => {
          ctx.print(
            `${ctx.out.bold(key.padEnd(8))}${numbers[i]!.padStart(numberWidth)}  ${ctx.out.dim(meaning)}`,
          );
        });
        // lag and pending above are the cpu pool's; each other pool gets a line, with why it waits.
        for (const [pool, stats] of Object.entries(queue.pools ?? {})) {
          if (pool === 'cpu') continue;
          ctx.print(
            `${ctx.out.bold(pool.padEnd(8))}lag ${stats.lag}, pending ${stats.pending}  ${ctx.out.dim(`the ${pool} pool (runs-on: ${pool})`)}`,
          );
          if (stats.unavailable)
            ctx.print(`${' '.repeat(8)}${ctx.out.yellow(`waiting: ${stats.unavailable}`)}`);
        }
        return EXIT.ok;
      }),
    );

  program
    .command('agents')
    .description('agents seen recently, with the job each one runs')
    .action(
      runtime.action(async (ctx) => {
        const agents = await ctx.client.agents();
        if (ctx.json) {
          printJson(ctx, agents);
          return EXIT.ok;
        }
        if (agents.length === 0) {
          ctx.note('no agents seen recently (agents start when jobs are queued)');
          return EXIT.ok;
        }
        const now = Date.now();
        const columns: Column<AgentInfo>[] = [
          { header: 'NAME', value: (a) => a.name, shrink: true, minWidth: 12 },
          {
            header: 'JOB',
            value: (a) => a.jobId ?? 'idle',
            color: (text, a) => (a.jobId ? text : ctx.out.dim(text)),
          },
          { header: 'LAST SEEN', value: (a) => ago(a.lastSeen, now) },
          { header: 'STARTED', value: (a) => ago(a.startedAt, now), dropPriority: 1 },
          {
            header: 'PID',
            value: (a) => (a.pid === null ? '' : String(a.pid)),
            align: 'right',
            dropPriority: 3,
          },
          { header: 'HOST', value: (a) => a.host ?? '', shrink: true, dropPriority: 2 },
        ];
        for (const line of table(agents, columns, { maxWidth: ctx.width, headerColor: ctx.out.dim })) {
          ctx.print(line);
        }
        return EXIT.ok;
      }),
    );
}
