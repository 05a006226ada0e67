import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  effectiveReplicaBounds,
  jobsToCreate,
  KEDA_SCALED_JOB_DEFAULTS,
  lagFromXinfoGroups,
  planScale,
  RAIBID_SCALED_JOB,
  resolveScaledJobSpec,
  type ScaledJobSpec,
  type ScalingStrategy,
  strategyEffectiveMaxScale,
  validateScaledJobSpec,
} from '../src/dev/scaling.js';

const spec = (overrides: Partial<ScaledJobSpec> = {}): ScaledJobSpec => ({
  pollingIntervalMs: 30_000,
  maxReplicaCount: 100,
  minReplicaCount: 0,
  strategy: 'default',
  targetLagCount: 1,
  activationLagCount: 0,
  ...overrides,
});

describe('strategyEffectiveMaxScale', () => {
  // Cases ported from kedacore/keda pkg/scaling/executor/scale_jobs_test.go
  // (TestDefaultScalingStrategy, TestCustomScalingStrategy, TestAccurateScalingStrategy,
  // TestEagerScalingStrategy): GetEffectiveMaxScale(maxScale, running, pending, maxReplicaCount, scaleTo).
  const cases: Array<{
    name: string;
    strategy: Partial<ScaledJobSpec> & { strategy: ScalingStrategy };
    args: [number, number, number, number, number];
    effectiveMaxScale: number;
    scaleTo?: number;
  }> = [
    {
      name: 'default 3,2,0,5',
      strategy: { strategy: 'default' },
      args: [3, 2, 0, 5, 1],
      effectiveMaxScale: 1,
    },
    {
      name: 'default 2,0,0,5',
      strategy: { strategy: 'default' },
      args: [2, 0, 0, 5, 1],
      effectiveMaxScale: 2,
    },
    {
      name: 'custom deduction 1, 50% of 2 running',
      strategy: {
        strategy: 'custom',
        customScalingQueueLengthDeduction: 1,
        customScalingRunningJobPercentage: 0.5,
      },
      args: [3, 2, 0, 5, 1],
      effectiveMaxScale: 1,
    },
    {
      name: 'custom deduction 1, nothing running',
      strategy: {
        strategy: 'custom',
        customScalingQueueLengthDeduction: 1,
        customScalingRunningJobPercentage: 0.5,
      },
      args: [10, 0, 0, 10, 1],
      effectiveMaxScale: 9,
    },
    {
      name: 'custom without parameters behaves as default (1)',
      strategy: { strategy: 'custom' },
      args: [3, 2, 0, 5, 1],
      effectiveMaxScale: 1,
    },
    {
      name: 'custom without parameters behaves as default (2)',
      strategy: { strategy: 'custom' },
      args: [2, 0, 0, 5, 1],
      effectiveMaxScale: 2,
    },
    {
      name: 'custom deduction 2, percentage 0',
      strategy: {
        strategy: 'custom',
        customScalingQueueLengthDeduction: 2,
        customScalingRunningJobPercentage: 0,
      },
      args: [3, 2, 0, 5, 1],
      effectiveMaxScale: 1,
    },
    {
      name: 'custom negative deduction is capped at maxReplicaCount',
      strategy: {
        strategy: 'custom',
        customScalingQueueLengthDeduction: -2,
        customScalingRunningJobPercentage: 0,
      },
      args: [3, 2, 0, 4, 1],
      effectiveMaxScale: 4,
    },
    {
      name: 'accurate 3,2,0,5',
      strategy: { strategy: 'accurate' },
      args: [3, 2, 0, 5, 1],
      effectiveMaxScale: 3,
    },
    {
      name: 'accurate 5,2,0,5',
      strategy: { strategy: 'accurate' },
      args: [5, 2, 0, 5, 1],
      effectiveMaxScale: 3,
    },
    {
      name: 'accurate 2 pending, below max',
      strategy: { strategy: 'accurate' },
      args: [3, 4, 2, 10, 1],
      effectiveMaxScale: 1,
    },
    {
      name: 'accurate 2 pending, over max',
      strategy: { strategy: 'accurate' },
      args: [5, 4, 2, 5, 1],
      effectiveMaxScale: 1,
    },
    {
      name: 'eager 4,3,0,10',
      strategy: { strategy: 'eager' },
      args: [4, 3, 0, 10, 1],
      effectiveMaxScale: 4,
      scaleTo: 10,
    },
    {
      name: 'eager 4,0,3,10',
      strategy: { strategy: 'eager' },
      args: [4, 0, 3, 10, 1],
      effectiveMaxScale: 4,
      scaleTo: 10,
    },
    {
      name: 'eager 4,7,0,10',
      strategy: { strategy: 'eager' },
      args: [4, 7, 0, 10, 1],
      effectiveMaxScale: 3,
      scaleTo: 10,
    },
    {
      name: 'eager 4,1,6,10',
      strategy: { strategy: 'eager' },
      args: [4, 1, 6, 10, 1],
      effectiveMaxScale: 3,
      scaleTo: 10,
    },
    {
      name: 'eager 15,0,0,10',
      strategy: { strategy: 'eager' },
      args: [15, 0, 0, 10, 1],
      effectiveMaxScale: 10,
      scaleTo: 10,
    },
  ];

  it.each(cases)('$name', ({ strategy, args, effectiveMaxScale, scaleTo }) => {
    const [maxScale, runningJobCount, pendingJobCount, maxReplicaCount, scaleToIn] = args;
    const result = strategyEffectiveMaxScale(strategy, {
      maxScale,
      runningJobCount,
      pendingJobCount,
      maxReplicaCount,
      scaleTo: scaleToIn,
    });
    expect(result.effectiveMaxScale).toBe(effectiveMaxScale);
    expect(result.scaleTo).toBe(scaleTo ?? scaleToIn);
  });

  it('custom truncates running * percentage toward zero, like Go int64(float64)', () => {
    const custom = { strategy: 'custom' as const, customScalingQueueLengthDeduction: 0 };
    const input = { maxScale: 10, runningJobCount: 3, pendingJobCount: 0, maxReplicaCount: 100, scaleTo: 10 };
    expect(
      strategyEffectiveMaxScale({ ...custom, customScalingRunningJobPercentage: 0.5 }, input)
        .effectiveMaxScale,
    ).toBe(9);
    expect(
      strategyEffectiveMaxScale({ ...custom, customScalingRunningJobPercentage: -0.5 }, input)
        .effectiveMaxScale,
    ).toBe(11);
  });
});

describe('effectiveReplicaBounds', () => {
  // kedacore/keda apis/keda/v1alpha1/scaledjob_types_test.go (TestScaledJob)
  it.each([
    { max: 10, min: 0, expectedMax: 10, expectedMin: 0 },
    { max: 10, min: 1, expectedMax: 9, expectedMin: 1 },
    { max: 1, min: 10, expectedMax: 1, expectedMin: 1 },
  ])('max $max, min $min → max $expectedMax, min $expectedMin', ({ max, min, expectedMax, expectedMin }) => {
    expect(effectiveReplicaBounds({ maxReplicaCount: max, minReplicaCount: min })).toEqual({
      maxReplicaCount: expectedMax,
      minReplicaCount: expectedMin,
    });
  });
});

describe('planScale: metrics (queueLength, maxScale, activity)', () => {
  it('one scaler, queueLength 20, target 2, maxReplicaCount 100, min 1 → 20 and 10', () => {
    // kedacore/keda pkg/scaling/scale_handler_test.go TestIsScaledJobActive (single trigger, default "max")
    const d = planScale(spec({ minReplicaCount: 1, maxReplicaCount: 100, targetLagCount: 2 }), {
      lag: 20,
      runningJobs: 1,
      pendingJobs: 0,
    });
    expect(d).toMatchObject({ active: true, queueLength: 20, maxScale: 10 });
  });

  it('empty queue but minReplicaCount > 0 is active with queueLength 0 and maxScale 0', () => {
    // kedacore/keda pkg/scaling/scale_handler_test.go TestIsScaledJobActiveIfQueueEmptyButMinReplicaCountGreaterZero
    const d = planScale(spec({ minReplicaCount: 1 }), { lag: 0, runningJobs: 1, pendingJobs: 0 });
    expect(d).toMatchObject({ active: true, queueLength: 0, maxScale: 0, jobs: 0 });
  });

  it('maxScale is ceil(lag / lagCount)', () => {
    expect(planScale(spec({ targetLagCount: 3 }), { lag: 7, runningJobs: 0, pendingJobs: 0 }).maxScale).toBe(
      3,
    );
    expect(planScale(spec({ targetLagCount: 3 }), { lag: 6, runningJobs: 0, pendingJobs: 0 }).maxScale).toBe(
      2,
    );
  });

  it('zero lag → inactive, 0 jobs', () => {
    for (const strategy of ['default', 'custom', 'accurate', 'eager'] as const) {
      const d = planScale(spec({ strategy }), { lag: 0, runningJobs: 0, pendingJobs: 0 });
      expect(d.active).toBe(false);
      expect(d.jobs).toBe(0);
    }
  });

  it('activation: active only when lag > activationLagCount (redis_streams_scaler.go)', () => {
    const s = spec({ strategy: 'accurate', activationLagCount: 2 });
    expect(jobsToCreate(s, { lag: 1, runningJobs: 0, pendingJobs: 0 })).toBe(0);
    expect(jobsToCreate(s, { lag: 2, runningJobs: 0, pendingJobs: 0 })).toBe(0);
    expect(jobsToCreate(s, { lag: 3, runningJobs: 0, pendingJobs: 0 })).toBe(3);
    // raibid: activationLagCount 0 → a single queued job activates.
    expect(jobsToCreate(RAIBID_SCALED_JOB, { lag: 1, runningJobs: 0, pendingJobs: 0 })).toBe(1);
  });

  it('a negative activationLagCount still needs lag > 0 (the "max" calculation skips queueLength 0)', () => {
    expect(
      planScale(spec({ activationLagCount: -1 }), { lag: 0, runningJobs: 0, pendingJobs: 0 }).active,
    ).toBe(false);
  });
});

describe('planScale: maxReplicaCount table (keda.sh scaledjob-spec, "maxReplicaCount", default strategy)', () => {
  it.each([
    { queue: 10, max: 3, target: 1, running: 0, jobs: 3 },
    { queue: 10, max: 3, target: 2, running: 0, jobs: 3 },
    { queue: 10, max: 3, target: 1, running: 1, jobs: 2 },
    { queue: 10, max: 100, target: 1, running: 0, jobs: 10 },
    { queue: 4, max: 3, target: 5, running: 0, jobs: 1 },
  ])(
    'queue $queue, max $max, target $target, running $running → $jobs',
    ({ queue, max, target, running, jobs }) => {
      const s = spec({ maxReplicaCount: max, targetLagCount: target });
      expect(jobsToCreate(s, { lag: queue, runningJobs: running, pendingJobs: 0 })).toBe(jobs);
    },
  );
});

describe('planScale: strategy walk-throughs from keda.sh scaledjob-spec', () => {
  it('default: 3 queued/0 running → 3; 3 queued/3 running → 0; 6 queued/3 running → 3', () => {
    const s = spec({ strategy: 'default' });
    expect(jobsToCreate(s, { lag: 3, runningJobs: 0, pendingJobs: 0 })).toBe(3);
    expect(jobsToCreate(s, { lag: 3, runningJobs: 3, pendingJobs: 0 })).toBe(0);
    expect(jobsToCreate(s, { lag: 6, runningJobs: 3, pendingJobs: 0 })).toBe(3);
  });

  it('minReplicaCount 2 with 2 running, target 1, 3 new messages → 3 more jobs', () => {
    const s = spec({ minReplicaCount: 2 });
    expect(jobsToCreate(s, { lag: 3, runningJobs: 2, pendingJobs: 0 })).toBe(3);
  });

  it('minReplicaCount tops up first (scale_jobs_test.go TestRunningJobCount*MinReplicaCount)', () => {
    const s = spec({ minReplicaCount: 2 });
    expect(planScale(s, { lag: 0, runningJobs: 0, pendingJobs: 0 })).toMatchObject({
      effectiveMaxScale: 2,
      jobs: 2,
    });
    expect(planScale(s, { lag: 0, runningJobs: 1, pendingJobs: 0 })).toMatchObject({
      effectiveMaxScale: 1,
      jobs: 1,
    });
    const one = spec({ minReplicaCount: 1 });
    expect(planScale(one, { lag: 2, runningJobs: 1, pendingJobs: 0 })).toMatchObject({
      effectiveMaxScale: 2,
      scaleTo: 2,
      jobs: 2,
    });
  });

  it('eager: creates min(maxReplicaCount - running - pending, maxScale)', () => {
    const s = spec({ strategy: 'eager', maxReplicaCount: 4 });
    expect(planScale(s, { lag: 1, runningJobs: 0, pendingJobs: 0 })).toMatchObject({ scaleTo: 4, jobs: 1 });
    expect(jobsToCreate(s, { lag: 9, runningJobs: 1, pendingJobs: 1 })).toBe(2);
  });
});

describe('planScale: raibid (accurate, lagCount 1, activationLagCount 0, max 4)', () => {
  const s = RAIBID_SCALED_JOB;

  it.each([
    { name: 'one queued job, nothing running', lag: 1, running: 0, pending: 0, jobs: 1 },
    { name: 'more queued than the cap', lag: 10, running: 0, pending: 0, jobs: 4 },
    { name: 'running jobs at the cap', lag: 10, running: 4, pending: 0, jobs: 0 },
    { name: 'two busy agents, three queued', lag: 3, running: 2, pending: 0, jobs: 2 },
    { name: 'agent started but not yet reading: no double spawn', lag: 1, running: 1, pending: 1, jobs: 0 },
    { name: 'one pending, two queued', lag: 2, running: 1, pending: 1, jobs: 1 },
    { name: 'queue drained while agents work', lag: 0, running: 3, pending: 0, jobs: 0 },
  ])('$name → $jobs', ({ lag, running, pending, jobs }) => {
    expect(jobsToCreate(s, { lag, runningJobs: running, pendingJobs: pending })).toBe(jobs);
  });

  it('more running than the cap (cap lowered at runtime) → 0', () => {
    expect(jobsToCreate(s, { lag: 5, runningJobs: 6, pendingJobs: 0 })).toBe(0);
  });
});

describe('spec', () => {
  it('RAIBID_SCALED_JOB matches the contract and is valid', () => {
    expect(RAIBID_SCALED_JOB).toMatchObject({
      strategy: 'accurate',
      targetLagCount: 1,
      activationLagCount: 0,
      minReplicaCount: 0,
      maxReplicaCount: 4,
      pollingIntervalMs: 5_000,
    });
    expect(() => validateScaledJobSpec(RAIBID_SCALED_JOB)).not.toThrow();
    expect(Object.isFrozen(RAIBID_SCALED_JOB)).toBe(true);
  });

  it('KEDA defaults', () => {
    expect(KEDA_SCALED_JOB_DEFAULTS).toMatchObject({
      pollingIntervalMs: 30_000,
      maxReplicaCount: 100,
      minReplicaCount: 0,
      successfulJobsHistoryLimit: 100,
      failedJobsHistoryLimit: 100,
      strategy: 'default',
    });
  });

  it('resolveScaledJobSpec applies overrides and ignores undefined ones', () => {
    expect(resolveScaledJobSpec({ maxReplicaCount: 8, pollingIntervalMs: undefined })).toEqual({
      ...RAIBID_SCALED_JOB,
      maxReplicaCount: 8,
    });
  });

  it.each([
    { name: 'lagCount 0', overrides: { targetLagCount: 0 } },
    { name: 'fractional max', overrides: { maxReplicaCount: 1.5 } },
    { name: 'negative min', overrides: { minReplicaCount: -1 } },
    { name: 'zero polling interval', overrides: { pollingIntervalMs: 0 } },
    { name: 'unknown strategy', overrides: { strategy: 'fast' as ScalingStrategy } },
    {
      name: 'custom percentage without deduction',
      overrides: { strategy: 'custom' as const, customScalingRunningJobPercentage: 0.5 },
    },
  ])('rejects $name', ({ overrides }) => {
    expect(() => resolveScaledJobSpec(overrides)).toThrow(RangeError);
  });

  it('rejects negative or non-finite observations', () => {
    expect(() => jobsToCreate(RAIBID_SCALED_JOB, { lag: -1, runningJobs: 0, pendingJobs: 0 })).toThrow(
      RangeError,
    );
    expect(() =>
      jobsToCreate(RAIBID_SCALED_JOB, { lag: 1, runningJobs: Number.NaN, pendingJobs: 0 }),
    ).toThrow(RangeError);
  });
});

describe('lagFromXinfoGroups', () => {
  const group = (name: string, lag: number | null) => [
    'name',
    name,
    'consumers',
    1,
    'pending',
    0,
    'last-delivered-id',
    '0-0',
    'entries-read',
    lag === null ? null : 3,
    'lag',
    lag,
  ];

  it('reads the lag of the named group from an ioredis reply', () => {
    expect(lagFromXinfoGroups([group('other', 9), group('raibid-agents', 4)], 'raibid-agents')).toBe(4);
  });

  it('returns undefined when the group is missing (KEDA then uses XLEN)', () => {
    expect(lagFromXinfoGroups([group('other', 9)], 'raibid-agents')).toBeUndefined();
    expect(lagFromXinfoGroups([], 'raibid-agents')).toBeUndefined();
    expect(lagFromXinfoGroups(null, 'raibid-agents')).toBeUndefined();
  });

  it('maps a nil lag to 0 (KEDA does not scale on it)', () => {
    expect(lagFromXinfoGroups([group('raibid-agents', null)], 'raibid-agents')).toBe(0);
  });

  it('accepts RESP3-style objects and string numbers', () => {
    expect(lagFromXinfoGroups([{ name: 'raibid-agents', lag: '7' }], 'raibid-agents')).toBe(7);
  });
});

describe('properties', () => {
  const strategyArb = fc.constantFrom<ScalingStrategy>('default', 'custom', 'accurate', 'eager');
  const specArb = fc
    .record({
      strategy: strategyArb,
      maxReplicaCount: fc.integer({ min: 0, max: 50 }),
      minReplicaCount: fc.integer({ min: 0, max: 10 }),
      targetLagCount: fc.integer({ min: 1, max: 10 }),
      activationLagCount: fc.integer({ min: -2, max: 10 }),
      customScalingQueueLengthDeduction: fc.integer({ min: -5, max: 5 }),
      customScalingRunningJobPercentage: fc.double({ min: -1, max: 2, noNaN: true }),
    })
    .map((r): ScaledJobSpec => ({ pollingIntervalMs: 5_000, ...r }));
  const obsArb = fc
    .record({
      lag: fc.integer({ min: 0, max: 500 }),
      runningJobs: fc.integer({ min: 0, max: 60 }),
      pendingFraction: fc.double({ min: 0, max: 1, noNaN: true }),
    })
    .map(({ lag, runningJobs, pendingFraction }) => ({
      lag,
      runningJobs,
      // pending jobs are a subset of the unfinished ("running") ones, as in KEDA
      pendingJobs: Math.floor(runningJobs * pendingFraction),
    }));

  it('never negative, always an integer', () => {
    fc.assert(
      fc.property(specArb, obsArb, (s, o) => {
        const jobs = jobsToCreate(s, o);
        expect(Number.isInteger(jobs)).toBe(true);
        expect(jobs).toBeGreaterThanOrEqual(0);
      }),
    );
  });

  it('once minReplicaCount is satisfied, never more jobs than undelivered entries', () => {
    fc.assert(
      fc.property(specArb, obsArb, (s, o) => {
        const { minReplicaCount } = effectiveReplicaBounds(s);
        fc.pre(o.runningJobs >= minReplicaCount);
        expect(jobsToCreate(s, o)).toBeLessThanOrEqual(o.lag);
      }),
    );
  });

  it('nothing without activation (lag <= activationLagCount) when minReplicaCount is 0', () => {
    fc.assert(
      fc.property(specArb, obsArb, fc.integer({ min: 0, max: 12 }), (s0, o0, below) => {
        const s = { ...s0, minReplicaCount: 0 };
        const o = { ...o0, lag: Math.max(0, s.activationLagCount - below) };
        expect(jobsToCreate(s, o)).toBe(0);
      }),
    );
  });

  it('default, accurate and eager never exceed maxReplicaCount - runningJobs', () => {
    fc.assert(
      fc.property(specArb, obsArb, (s0, o) => {
        fc.pre(s0.strategy !== 'custom');
        const s = { ...s0, minReplicaCount: 0 };
        expect(jobsToCreate(s, o)).toBeLessThanOrEqual(Math.max(0, s.maxReplicaCount - o.runningJobs));
      }),
    );
  });

  it('accurate with raibid settings: running + created never exceeds the cap, and lag is always served up to it', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 32 }),
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 0, max: 32 }),
        (maxReplicaCount, lag, runningJobs) => {
          fc.pre(runningJobs <= maxReplicaCount);
          const s = resolveScaledJobSpec({ maxReplicaCount });
          const jobs = jobsToCreate(s, { lag, runningJobs, pendingJobs: 0 });
          expect(runningJobs + jobs).toBeLessThanOrEqual(maxReplicaCount);
          // with no pending agents, every queued entry gets an agent as long as there is room
          expect(jobs).toBe(Math.min(lag, maxReplicaCount - runningJobs));
        },
      ),
    );
  });
});
