import { createLogger, loadConfigOrExit } from '@raibid/common';
import { Agent } from './agent.js';
import { agentConfigSchema, parseArgs, USAGE, UsageError } from './config.js';

// Exit codes: 0 = a job ran (whatever its outcome), no job arrived within
// AGENT_IDLE_TIMEOUT, or shut down by a signal with the job handed back;
// 1 = the agent itself failed (e.g. Redis unreachable); 2 = bad arguments or configuration.

let args: ReturnType<typeof parseArgs>;
try {
  args = parseArgs(process.argv.slice(2));
} catch (error) {
  if (!(error instanceof UsageError)) throw error;
  process.stderr.write(`raibid-agent: ${error.message}\n`);
  process.exit(2);
}
if (args === 'help') {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const config = loadConfigOrExit(agentConfigSchema);
const logger = createLogger({ name: 'raibid-agent', level: config.LOG_LEVEL });
const agent = new Agent(config, { loop: args.loop, pool: args.pool ?? config.RAIBID_POOL, logger });

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => agent.shutdown(signal));
}

try {
  const exit = await agent.run();
  logger.info({ agent: agent.name, exit }, 'agent exiting');
  await agent.close();
  process.exit(0);
} catch (error) {
  logger.fatal({ err: error, agent: agent.name }, `agent failed: ${(error as Error).message}`);
  await agent.close();
  process.exit(1);
}
