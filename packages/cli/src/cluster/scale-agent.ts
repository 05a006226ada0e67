import {
  BatchV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type V1Job,
  type V1JobSpec,
  type V1OwnerReference,
} from '@kubernetes/client-node';
import { z } from 'zod';
import { CliError, EXIT } from '../errors.js';
import { kubeError, kubeStatus, NAMESPACE } from './kube.js';

/** The ScaledJob of the agents (CONTRACT) and the label KEDA puts on its Jobs and their pods. */
export const SCALED_JOB = 'raibid-agent';
export const SCALED_JOB_LABEL = 'scaledjob.keda.sh/name';
const GENERATION_ANNOTATION = 'scaledjob.keda.sh/generation';
const EXCLUDED_LABELS_ANNOTATION = 'scaledjob.keda.sh/job-excluded-labels';
/** KEDA's default when a ScaledJob sets no maxReplicaCount. */
const DEFAULT_MAX_REPLICAS = 100;

/** The parts of a ScaledJob (keda.sh/v1alpha1) that starting Jobs from it needs. */
const scaledJobSchema = z.object({
  apiVersion: z.string(),
  kind: z.literal('ScaledJob'),
  metadata: z.object({
    name: z.string(),
    namespace: z.string(),
    uid: z.string(),
    generation: z.number().int(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  }),
  spec: z.object({
    jobTargetRef: z.looseObject({
      template: z.looseObject({
        metadata: z.looseObject({ labels: z.record(z.string(), z.string()).optional() }).optional(),
        spec: z.looseObject({ restartPolicy: z.string().optional() }),
      }),
    }),
    maxReplicaCount: z.number().int().nonnegative().optional(),
  }),
});
export type ScaledJob = z.infer<typeof scaledJobSchema>;

/**
 * The Job KEDA's scale executor would create for `scaledJob` (keda pkg/scaling/executor/scale_jobs.go,
 * generateJobs): generateName `<name>-`, KEDA's labels plus the ScaledJob's (minus those excluded by
 * annotation), the generation annotation plus the ScaledJob's annotations, the pod template labelled
 * with the ScaledJob's name, an empty restartPolicy made OnFailure, and the ScaledJob as controller owner
 * (so `kubectl get jobs`, KEDA's running-job count and Tilt's resource view treat it as one of its own).
 */
export function jobFromScaledJob(scaledJob: ScaledJob): V1Job {
  const { name, namespace, uid, generation } = scaledJob.metadata;
  const excluded = new Set(
    (scaledJob.metadata.annotations?.[EXCLUDED_LABELS_ANNOTATION] ?? '')
      .split(',')
      .map((label) => label.trim())
      .filter(Boolean),
  );
  const labels: Record<string, string> = {
    'app.kubernetes.io/name': name,
    'app.kubernetes.io/part-of': name,
    // KEDA writes `keda-operator` and its version here; these Jobs were started by hand.
    'app.kubernetes.io/managed-by': 'raibid-scale-agent',
    [SCALED_JOB_LABEL]: name,
  };
  for (const [key, value] of Object.entries(scaledJob.metadata.labels ?? {})) {
    if (!excluded.has(key)) labels[key] = value;
  }
  const annotations = { [GENERATION_ANNOTATION]: String(generation), ...scaledJob.metadata.annotations };

  const spec = structuredClone(scaledJob.spec.jobTargetRef) as unknown as V1JobSpec;
  spec.template.metadata = {
    ...spec.template.metadata,
    labels: { ...spec.template.metadata?.labels, [SCALED_JOB_LABEL]: name },
  };
  if (!spec.template.spec?.restartPolicy) spec.template.spec!.restartPolicy = 'OnFailure';

  const owner: V1OwnerReference = {
    apiVersion: scaledJob.apiVersion,
    kind: scaledJob.kind,
    name,
    uid,
    controller: true,
    blockOwnerDeletion: true,
  };
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { generateName: `${name}-`, namespace, labels, annotations, ownerReferences: [owner] },
    spec,
  };
}

/** A Job is finished when it has a true Complete or Failed condition (what KEDA counts). */
function isFinished(job: V1Job): boolean {
  return (job.status?.conditions ?? []).some(
    (c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
  );
}

export interface ScaleAgentResult {
  requested: number;
  /** Unfinished agent Jobs before this run. */
  running: number;
  maxReplicaCount: number;
  /** Names of the Jobs created. */
  created: string[];
}

/** Reads ScaledJob raibid-agent; a missing one (or a missing KEDA) is explained. */
export async function readScaledJob(config: KubeConfig): Promise<ScaledJob> {
  const custom = config.makeApiClient(CustomObjectsApi);
  let object: unknown;
  try {
    object = await custom.getNamespacedCustomObject({
      group: 'keda.sh',
      version: 'v1alpha1',
      namespace: NAMESPACE,
      plural: 'scaledjobs',
      name: SCALED_JOB,
    });
  } catch (error) {
    if (kubeStatus(error) === 404) {
      throw new CliError(
        `ScaledJob ${NAMESPACE}/${SCALED_JOB} does not exist (or KEDA's CRDs are not installed): deploy raibid-ci first (tilt up, or see docs/deploy.md)`,
        EXIT.usage,
        'not_deployed',
      );
    }
    throw kubeError(config, `cannot read ScaledJob ${NAMESPACE}/${SCALED_JOB}`, error);
  }
  const parsed = scaledJobSchema.safeParse(object);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CliError(
      `ScaledJob ${NAMESPACE}/${SCALED_JOB} is not what raibid expects (${issue?.path.join('.')}: ${issue?.message})`,
      EXIT.unavailable,
      'bad_response',
    );
  }
  return parsed.data;
}

/**
 * Starts `requested` agent Jobs now from the ScaledJob's own job template, as KEDA would after a
 * poll: a ScaledJob has no scale subresource. At most maxReplicaCount agent Jobs run at once,
 * counting the unfinished ones already there.
 */
export async function scaleAgent(config: KubeConfig, requested: number): Promise<ScaleAgentResult> {
  const scaledJob = await readScaledJob(config);
  const batch = config.makeApiClient(BatchV1Api);
  let running: number;
  try {
    const jobs = await batch.listNamespacedJob({
      namespace: NAMESPACE,
      labelSelector: `${SCALED_JOB_LABEL}=${SCALED_JOB}`,
    });
    running = jobs.items.filter((job) => !isFinished(job)).length;
  } catch (error) {
    throw kubeError(config, `cannot list the agent Jobs in ${NAMESPACE}`, error);
  }
  const maxReplicaCount = scaledJob.spec.maxReplicaCount ?? DEFAULT_MAX_REPLICAS;
  const count = Math.max(0, Math.min(requested, maxReplicaCount - running));
  const created: string[] = [];
  for (let i = 0; i < count; i++) {
    try {
      const job = await batch.createNamespacedJob({
        namespace: NAMESPACE,
        body: jobFromScaledJob(scaledJob),
      });
      created.push(job.metadata?.name ?? '');
    } catch (error) {
      throw kubeError(
        config,
        `cannot create an agent Job in ${NAMESPACE}${created.length ? ` (created ${created.join(', ')} before)` : ''}`,
        error,
      );
    }
  }
  return { requested, running, maxReplicaCount, created };
}
