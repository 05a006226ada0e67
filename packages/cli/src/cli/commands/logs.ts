import type { Command } from 'commander';
import { followJobLog } from '../../api/sse.js';
import { EXIT } from '../../errors.js';
import { interruptible, printJson } from '../context.js';
import { formatLogLine, summaryLine } from '../follow.js';
import type { Runtime } from '../program.js';

export function registerLogs(program: Command, runtime: Runtime): void {
  program
    .command('logs')
    .description("print a job's log; -f follows it until the job ends")
    .argument('<id>', 'job id')
    .option('-f, --follow', 'stream new lines until the job ends (resumes after a dropped connection)')
    .action(
      runtime.action(async (ctx, id: string, options: { follow?: boolean }) => {
        if (!options.follow) {
          const text = await ctx.client.logText(id);
          if (ctx.json) printJson(ctx, { jobId: id, log: text });
          else ctx.io.stdout.write(text);
          return EXIT.ok;
        }
        // --json -f: one JSON object per line (NDJSON), `event` says which kind.
        const emit = (value: unknown) => ctx.io.stdout.write(`${JSON.stringify(value)}\n`);
        await interruptible(
          ctx,
          (signal) =>
            followJobLog(
              ctx.client,
              id,
              {
                onLog: (event) =>
                  ctx.json ? emit({ event: 'log', ...event }) : ctx.print(formatLogLine(event, ctx.out)),
                onStatus: (job) => {
                  if (ctx.json) emit({ event: 'status', job });
                },
                onReconnect: (attempt, reason) =>
                  ctx.note(`raibid: ${reason}; reconnecting (attempt ${attempt})`),
              },
              { signal },
            ),
          `stopped following the log of job ${id}`,
        );
        if (!ctx.json) ctx.io.stderr.write(`${summaryLine(await ctx.client.get(id), ctx.err)}\n`);
        return EXIT.ok;
      }),
    );
}
