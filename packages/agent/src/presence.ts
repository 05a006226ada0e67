import os from 'node:os';
import type { AgentRegistry } from '@raibid/common';

/**
 * The agent's heartbeat record (shown by the server's /api/v1/agents): written
 * every heartbeat and whenever the current job changes, removed on a clean exit.
 */
export class Presence {
  private jobId: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private beating: Promise<void> = Promise.resolve();
  private beatQueued = false;
  private readonly startedAt = new Date().toISOString();

  constructor(
    private readonly registry: AgentRegistry,
    private readonly name: string,
    private readonly heartbeatMs: number,
    private readonly onError: (error: unknown) => void,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.beat(), this.heartbeatMs);
    this.beat();
  }

  setJob(jobId: string | null): void {
    this.jobId = jobId;
    this.beat();
  }

  /**
   * Beats are chained so a late one never lands after stop() removed the record; while
   * one waits for an unreachable Redis, further beats fold into one (it writes the latest state).
   */
  private beat(): void {
    if (this.beatQueued) return;
    this.beatQueued = true;
    this.beating = this.beating.then(() => {
      this.beatQueued = false;
      return this.write();
    });
  }

  private async write(): Promise<void> {
    try {
      await this.registry.beat({
        name: this.name,
        jobId: this.jobId,
        lastSeen: new Date().toISOString(),
        startedAt: this.startedAt,
        pid: process.pid,
        host: os.hostname(),
      });
    } catch (error) {
      this.onError(error);
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.beating;
    await this.registry.remove(this.name);
  }
}
