/**
 * KEDA ScaledJob arithmetic, as a pure module, for the local scaler of `pnpm dev`.
 *
 * In Kubernetes a KEDA ScaledJob with one `redis-streams` trigger (stream `raibid:jobs`, consumer group
 * `raibid-agents`, `lagCount: "1"`, `activationLagCount: "0"`, `scalingStrategy.strategy: accurate`)
 * decides how many one-job agent Jobs to create on every polling interval. Locally the same decision is
 * made here, from the same metric, so that `pnpm dev` scales like the cluster does.
 *
 * Written from the KEDA source and documentation (no code copied):
 * - kedacore/keda pkg/scalers/redis_streams_scaler.go — metric = consumer group `lag` (XINFO GROUPS) when
 *   `consumerGroup` and a non-zero `lagCount` are set; active when metric > activationLagCount (default 0).
 * - kedacore/keda pkg/scaling/scaledjob/metrics.go — queueLength = metric, maxValue = min(queueLength /
 *   lagCount, maxReplicaCount); with `multipleScalersCalculation: max` (default) a scaler is only taken
 *   into account if it is active and its queueLength > 0; minReplicaCount > 0 forces "active"; both
 *   values are rounded up (ceil).
 * - kedacore/keda pkg/scaling/scale_handler.go — the ScaledJob loop: check once, then every
 *   pollingInterval; scaleTo = ceil(queueLength), maxScale = ceil(maxValue).
 * - kedacore/keda pkg/scaling/executor/scale_jobs.go — the strategies (default, custom, accurate, eager),
 *   the minReplicaCount branch, clamping at 0 and `create min(scaleTo, effectiveMaxScale)` jobs.
 * - kedacore/keda apis/keda/v1alpha1/scaledjob_types.go — effective min/max replica counts.
 * - keda.sh/docs/latest/reference/scaledjob-spec — defaults (pollingInterval 30 s, maxReplicaCount 100,
 *   minReplicaCount 0, successful/failedJobsHistoryLimit 100, strategy `default`).
 *
 * See docs/scaling.md for the walk-through.
 */

/** `spec.scalingStrategy.strategy` of a ScaledJob. KEDA treats any other value as `default`. */
export type ScalingStrategy = 'default' | 'custom' | 'accurate' | 'eager';

/** The parts of a ScaledJob (and of its single redis-streams trigger) that take part in the arithmetic. */
export interface ScaledJobSpec {
  /** `spec.pollingInterval` (KEDA: seconds, default 30) in milliseconds. */
  pollingIntervalMs: number;
  /** `spec.maxReplicaCount` (KEDA default 100). */
  maxReplicaCount: number;
  /** `spec.minReplicaCount` (KEDA default 0). */
  minReplicaCount: number;
  /** `spec.scalingStrategy.strategy` (KEDA default `default`). */
  strategy: ScalingStrategy;
  /** `spec.scalingStrategy.customScalingQueueLengthDeduction` (int32), `custom` only. */
  customScalingQueueLengthDeduction?: number;
  /**
   * `spec.scalingStrategy.customScalingRunningJobPercentage` (a string parsed as a float in KEDA), `custom`
   * only. When it is not set, KEDA silently uses the `default` strategy instead of `custom`.
   */
  customScalingRunningJobPercentage?: number;
  /** Trigger metadata `lagCount`: the target average lag per job. Must be >= 1 (0 = not set in KEDA). */
  targetLagCount: number;
  /** Trigger metadata `activationLagCount` (KEDA default 0): active only when lag > this. */
  activationLagCount: number;
}

/** What the local scaler observes on each poll. */
export interface ScaleObservation {
  /** The consumer group's `lag` from `XINFO GROUPS raibid:jobs` (entries not yet delivered to any agent). */
  lag: number;
  /**
   * KEDA's runningJobCount: agents started by the scaler that have not finished yet (Jobs without a
   * Complete/Failed condition). It INCLUDES the pending ones below.
   */
  runningJobs: number;
  /**
   * KEDA's pendingJobCount: the subset of `runningJobs` that has not started working yet (by default:
   * unfinished Jobs with no Running/Succeeded pod; with `pendingPodConditions`: Jobs none of whose pods
   * has all the listed conditions). Used by `accurate` and `eager` only.
   */
  pendingJobs: number;
}

/** Every intermediate value of one scaling decision, for logs and tests. */
export interface ScaleDecision {
  /** Whether the ScaledJob is active (trigger active, or minReplicaCount > 0). Inactive: nothing is created. */
  active: boolean;
  /** ceil(queueLength): KEDA's `scaleTo` before the strategy (0 when the trigger is not counted). */
  queueLength: number;
  /** ceil(min(queueLength / lagCount, maxReplicaCount)): KEDA's `maxScale`. */
  maxScale: number;
  /** `scaleTo` after the strategy (eager replaces it with maxReplicaCount). */
  scaleTo: number;
  /** The strategy's result clamped at 0: the most jobs KEDA will create on this poll. */
  effectiveMaxScale: number;
  /** Effective replica bounds after KEDA's min/max adjustment (see {@link effectiveReplicaBounds}). */
  minReplicaCount: number;
  maxReplicaCount: number;
  /** Number of jobs (agents) to create now: min(scaleTo, effectiveMaxScale) when active, else 0. */
  jobs: number;
}

/** KEDA's documented ScaledJob defaults (keda.sh scaledjob-spec; scale_jobs.go; scaledjob_types.go). */
export const KEDA_SCALED_JOB_DEFAULTS = {
  pollingIntervalMs: 30_000,
  maxReplicaCount: 100,
  minReplicaCount: 0,
  successfulJobsHistoryLimit: 100,
  failedJobsHistoryLimit: 100,
  strategy: 'default',
  multipleScalersCalculation: 'max',
  /** redis-streams trigger: `activationLagCount` default. */
  activationLagCount: 0,
} as const;

/**
 * The ScaledJob raibid runs (CONTRACT.md: redis-streams, lagCount "1", activationLagCount "0", accurate).
 *
 * `pollingIntervalMs` is 5 s for local responsiveness; it must equal `pollingInterval` (seconds) of the
 * ScaledJob in the tanka manifests so that `pnpm dev` and the cluster behave alike. `maxReplicaCount` 4 is
 * a default for a 2–20 core machine; the dev stack lets users override it.
 */
export const RAIBID_SCALED_JOB: Readonly<ScaledJobSpec> = Object.freeze({
  pollingIntervalMs: 5_000,
  maxReplicaCount: 4,
  minReplicaCount: 0,
  strategy: 'accurate',
  targetLagCount: 1,
  activationLagCount: 0,
});

const STRATEGIES: readonly ScalingStrategy[] = ['default', 'custom', 'accurate', 'eager'];

function isInt(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value);
}

/** Throws a RangeError naming the first invalid field; returns the spec unchanged otherwise. */
export function validateScaledJobSpec(spec: ScaledJobSpec): ScaledJobSpec {
  if (!isInt(spec.pollingIntervalMs) || spec.pollingIntervalMs <= 0) {
    throw new RangeError(
      `pollingIntervalMs must be a positive integer, got ${String(spec.pollingIntervalMs)}`,
    );
  }
  if (!isInt(spec.maxReplicaCount) || spec.maxReplicaCount < 0) {
    throw new RangeError(
      `maxReplicaCount must be a non-negative integer, got ${String(spec.maxReplicaCount)}`,
    );
  }
  if (!isInt(spec.minReplicaCount) || spec.minReplicaCount < 0) {
    throw new RangeError(
      `minReplicaCount must be a non-negative integer, got ${String(spec.minReplicaCount)}`,
    );
  }
  if (!STRATEGIES.includes(spec.strategy)) {
    throw new RangeError(`strategy must be one of ${STRATEGIES.join(', ')}, got ${String(spec.strategy)}`);
  }
  // lagCount 0 (or absent) makes KEDA's redis-streams scaler use XPENDING instead of the lag: not emulated.
  if (!isInt(spec.targetLagCount) || spec.targetLagCount < 1) {
    throw new RangeError(
      `targetLagCount (lagCount) must be an integer >= 1, got ${String(spec.targetLagCount)}`,
    );
  }
  if (!isInt(spec.activationLagCount)) {
    throw new RangeError(`activationLagCount must be an integer, got ${String(spec.activationLagCount)}`);
  }
  if (
    spec.customScalingQueueLengthDeduction !== undefined &&
    !isInt(spec.customScalingQueueLengthDeduction)
  ) {
    throw new RangeError(
      `customScalingQueueLengthDeduction must be an integer, got ${String(spec.customScalingQueueLengthDeduction)}`,
    );
  }
  if (
    spec.customScalingRunningJobPercentage !== undefined &&
    !Number.isFinite(spec.customScalingRunningJobPercentage)
  ) {
    throw new RangeError(
      `customScalingRunningJobPercentage must be a finite number, got ${String(spec.customScalingRunningJobPercentage)}`,
    );
  }
  // KEDA dereferences the deduction unconditionally once the percentage parses: a ScaledJob with only the
  // percentage set would crash the operator's scale loop. Refuse it instead of inventing a value.
  if (
    spec.strategy === 'custom' &&
    spec.customScalingRunningJobPercentage !== undefined &&
    spec.customScalingQueueLengthDeduction === undefined
  ) {
    throw new RangeError(
      'customScalingQueueLengthDeduction is required when customScalingRunningJobPercentage is set',
    );
  }
  return spec;
}

/** The raibid ScaledJob with local overrides (e.g. `--max-agents`), validated. */
export function resolveScaledJobSpec(overrides: Partial<ScaledJobSpec> = {}): ScaledJobSpec {
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  return validateScaledJobSpec({ ...RAIBID_SCALED_JOB, ...defined });
}

/**
 * KEDA's ScaledJob.MinReplicaCount()/MaxReplicaCount() with both fields set: when min > max both become
 * max; otherwise the max used by the strategies is `maxReplicaCount - minReplicaCount` (the min jobs are
 * "reserved" and running jobs are counted net of them).
 */
export function effectiveReplicaBounds(spec: Pick<ScaledJobSpec, 'minReplicaCount' | 'maxReplicaCount'>): {
  minReplicaCount: number;
  maxReplicaCount: number;
} {
  if (spec.minReplicaCount > spec.maxReplicaCount) {
    return { minReplicaCount: spec.maxReplicaCount, maxReplicaCount: spec.maxReplicaCount };
  }
  return {
    minReplicaCount: spec.minReplicaCount,
    maxReplicaCount: spec.maxReplicaCount - spec.minReplicaCount,
  };
}

/** Inputs of a strategy, named as in KEDA's `GetEffectiveMaxScale`. */
export interface StrategyInput {
  maxScale: number;
  runningJobCount: number;
  pendingJobCount: number;
  maxReplicaCount: number;
  scaleTo: number;
}

/**
 * One strategy step (KEDA `ScalingStrategy.GetEffectiveMaxScale`), unclamped: may be negative.
 * - default:  maxScale - running
 * - custom:   min(maxScale - deduction - trunc(running * percentage), maxReplicaCount); falls back to
 *             `default` when the percentage is not set
 * - accurate: maxScale + running > maxReplicaCount ? maxReplicaCount - running : maxScale - pending
 * - eager:    min(maxReplicaCount - running - pending, maxScale), and scaleTo becomes maxReplicaCount
 */
export function strategyEffectiveMaxScale(
  spec: Pick<
    ScaledJobSpec,
    'strategy' | 'customScalingQueueLengthDeduction' | 'customScalingRunningJobPercentage'
  >,
  input: StrategyInput,
): { effectiveMaxScale: number; scaleTo: number } {
  const { maxScale, runningJobCount: running, pendingJobCount: pending, maxReplicaCount, scaleTo } = input;
  switch (spec.strategy) {
    case 'custom': {
      const percentage = spec.customScalingRunningJobPercentage;
      if (percentage === undefined) return { effectiveMaxScale: maxScale - running, scaleTo };
      const deduction = spec.customScalingQueueLengthDeduction ?? 0;
      // Go's int64(float64) conversion truncates toward zero.
      const deducted = maxScale - deduction - Math.trunc(running * percentage);
      return { effectiveMaxScale: Math.min(deducted, maxReplicaCount), scaleTo };
    }
    case 'accurate':
      if (maxScale + running > maxReplicaCount)
        return { effectiveMaxScale: maxReplicaCount - running, scaleTo };
      return { effectiveMaxScale: maxScale - pending, scaleTo };
    case 'eager':
      return {
        effectiveMaxScale: Math.min(maxReplicaCount - running - pending, maxScale),
        scaleTo: maxReplicaCount,
      };
    default:
      return { effectiveMaxScale: maxScale - running, scaleTo };
  }
}

function assertCount(name: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(`${name} must be a finite number >= 0, got ${String(value)}`);
  }
}

/**
 * The whole per-poll decision of KEDA for a ScaledJob with one redis-streams (lag) trigger and
 * `multipleScalersCalculation: max`: scaler → queueLength/maxScale → strategy → jobs to create.
 */
export function planScale(spec: ScaledJobSpec, observation: ScaleObservation): ScaleDecision {
  validateScaledJobSpec(spec);
  const { lag, runningJobs, pendingJobs } = observation;
  assertCount('lag', lag);
  assertCount('runningJobs', runningJobs);
  assertCount('pendingJobs', pendingJobs);

  const { minReplicaCount, maxReplicaCount } = effectiveReplicaBounds(spec);

  // redis-streams scaler: the metric is the lag; the trigger is active when lag > activationLagCount.
  const triggerActive = lag > spec.activationLagCount;

  // ScaledJob metrics, "max" over one scaler: only an active scaler with queueLength > 0 counts.
  let queueLength = 0;
  let maxValue = 0;
  let active = false;
  if (triggerActive && lag > 0) {
    queueLength = lag;
    maxValue = Math.min(lag / spec.targetLagCount, maxReplicaCount);
    active = true;
  }
  if (minReplicaCount > 0) active = true;
  const scaleToFromMetric = Math.ceil(queueLength);
  const maxScale = Math.ceil(Math.min(maxValue, maxReplicaCount));

  // Executor: top up to minReplicaCount first, otherwise apply the strategy on jobs net of the min.
  let effectiveMaxScale: number;
  let scaleTo: number;
  if (runningJobs < minReplicaCount) {
    effectiveMaxScale = minReplicaCount - runningJobs;
    scaleTo = effectiveMaxScale;
  } else {
    ({ effectiveMaxScale, scaleTo } = strategyEffectiveMaxScale(spec, {
      maxScale,
      runningJobCount: runningJobs - minReplicaCount,
      pendingJobCount: pendingJobs,
      maxReplicaCount,
      scaleTo: scaleToFromMetric,
    }));
  }
  effectiveMaxScale = Math.max(0, effectiveMaxScale);

  const jobs = active && effectiveMaxScale > 0 ? Math.max(0, Math.min(scaleTo, effectiveMaxScale)) : 0;
  return {
    active,
    queueLength: scaleToFromMetric,
    maxScale,
    scaleTo,
    effectiveMaxScale,
    minReplicaCount,
    maxReplicaCount,
    jobs,
  };
}

/** How many one-job agents to start on this poll (>= 0), exactly as KEDA would create Jobs. */
export function jobsToCreate(spec: ScaledJobSpec, observation: ScaleObservation): number {
  return planScale(spec, observation).jobs;
}

/**
 * Reads the `lag` of `consumerGroup` from an `XINFO GROUPS <stream>` reply (ioredis: an array of flat
 * `[field, value, ...]` arrays; RESP3 clients: an array of objects).
 *
 * Returns `undefined` when the group is not in the reply: KEDA then uses `XLEN <stream>` as the lag. (When
 * the stream does not exist, `XINFO GROUPS` fails with "ERR no such key" and KEDA uses 0.) A `nil` lag
 * (Redis cannot compute it, e.g. after XDEL) is returned as 0: KEDA treats it as inactive, creating nothing.
 */
export function lagFromXinfoGroups(reply: unknown, consumerGroup: string): number | undefined {
  if (!Array.isArray(reply)) return undefined;
  for (const entry of reply) {
    const fields = toFieldMap(entry);
    if (fields === undefined || String(fields.get('name')) !== consumerGroup) continue;
    const lag = fields.get('lag');
    if (lag === null || lag === undefined) return 0;
    const value = typeof lag === 'number' ? lag : Number(String(lag));
    return Number.isFinite(value) && value > 0 ? value : 0;
  }
  return undefined;
}

function toFieldMap(entry: unknown): Map<string, unknown> | undefined {
  if (Array.isArray(entry)) {
    const map = new Map<string, unknown>();
    for (let i = 0; i + 1 < entry.length; i += 2) map.set(String(entry[i]), entry[i + 1]);
    return map;
  }
  if (entry instanceof Map) return new Map([...entry].map(([k, v]) => [String(k), v]));
  if (entry !== null && typeof entry === 'object') return new Map(Object.entries(entry));
  return undefined;
}
