import { Command, CommanderError } from 'commander';
import { CliError, EXIT, type ExitCode } from '../errors.js';
import { registerDev } from './commands/dev.js';
import { registerJobs } from './commands/jobs.js';
import { registerLogs } from './commands/logs.js';
import { registerScaleAgent } from './commands/scale-agent.js';
import { registerSeedGitea } from './commands/seed-gitea.js';
import { registerServerLogs } from './commands/server-logs.js';
import { registerStatus } from './commands/status.js';
import { registerSubmit } from './commands/submit.js';
import { registerTriggerTestJob } from './commands/trigger-test-job.js';
import { type CommandContext, createContext } from './context.js';
import { type CliIo, colorsFor } from './io.js';

/** Wraps a command handler: builds its context, runs it, keeps its exit code. */
export interface Runtime {
  io: CliIo;
  action<A extends unknown[]>(
    handler: (ctx: CommandContext, ...args: A) => Promise<ExitCode>,
  ): (...args: unknown[]) => Promise<void>;
  /** For commands that do not talk to the API (dev): records their exit code. */
  setExitCode(code: number): void;
}

const HELP_AFTER = `
Environment:
  RAIBID_URL        server to talk to (default http://localhost:8080)
  RAIBID_API_TOKEN  bearer token for submit, cancel and retry
  NO_COLOR          plain output
  KUBECONFIG        cluster tools (seed-gitea, trigger-test-job, scale-agent, server-logs);
                    else ~/.kube/config, else /etc/rancher/k3s/k3s.yaml
  GITEA_URL         Gitea for seed-gitea and trigger-test-job (default http://localhost:3000)

Exit codes:
  0    done; with --wait: the job succeeded
  1    with --wait: the job failed, was cancelled or ended in error
  2    usage: bad arguments, or the server refused them (400, 404, ...)
  3    the server is unreachable, refused the token, or failed
  4    a bug in raibid (please report it)
  130  interrupted (Ctrl-C) while waiting; the job keeps running

Start here: pnpm dev (the whole CI on this machine), then: raibid submit /path/to/repo --wait
On the cluster (Tilt's tools): raibid seed-gitea, then raibid trigger-test-job
`;

function reportError(io: CliIo, error: CliError, json: boolean): void {
  if (json) {
    io.stderr.write(`${JSON.stringify({ error: { code: error.code, message: error.message } })}\n`);
  } else {
    io.stderr.write(`${colorsFor(io.stderr, io.env).red('raibid:')} ${error.message}\n`);
  }
}

/** Runs the `raibid` command line `argv` (without node and script) and resolves to its exit code. */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  let exitCode: number = EXIT.ok;
  const runtime: Runtime = {
    io,
    action:
      (handler) =>
      async (...args) => {
        const command = args[args.length - 1] as Command;
        const ctx = createContext(command, io);
        exitCode = await handler(ctx, ...(args.slice(0, -1) as never));
      },
    setExitCode(code) {
      exitCode = code;
    },
  };

  const program = new Command('raibid')
    .description('raibid-ci: submit and watch CI jobs, or run the whole CI locally (raibid dev)')
    .option('--url <url>', 'server URL (default: $RAIBID_URL or http://localhost:8080)')
    .option('--json', 'machine-readable output: JSON on stdout, errors as JSON on stderr')
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      // One line: `raibid: unknown command 'x' (did you mean logs?)`.
      outputError: (text, write) =>
        write(
          text.replace(/^error: /, 'raibid: ').replace(/\n\(Did you mean (.*)\?\)/, ' (did you mean $1?)'),
        ),
    })
    .addHelpText('after', HELP_AFTER);

  registerSubmit(program, runtime);
  registerJobs(program, runtime);
  registerLogs(program, runtime);
  registerStatus(program, runtime);
  registerDev(program, runtime);
  registerSeedGitea(program, runtime);
  registerTriggerTestJob(program, runtime);
  registerScaleAgent(program, runtime);
  registerServerLogs(program, runtime);

  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      const shownOnRequest = ['commander.helpDisplayed', 'commander.version'].includes(error.code);
      return shownOnRequest ? EXIT.ok : EXIT.usage;
    }
    const json = argv.includes('--json');
    if (error instanceof CliError) {
      reportError(io, error, json);
      return error.exitCode;
    }
    const message = error instanceof Error ? error.message : String(error);
    reportError(io, new CliError(`unexpected error: ${message}`, EXIT.internal, 'internal'), json);
    return EXIT.internal;
  }
  return exitCode;
}
