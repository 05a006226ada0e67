import { existsSync, readFileSync } from 'node:fs';
import { BatchV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { KubeAgentsView } from './schemas.js';

/** Label KEDA puts on every Job it creates for a ScaledJob, and on those Jobs' pods. */
export const SCALED_JOB_LABEL = 'scaledjob.keda.sh/name';

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * The agent Jobs and pods KEDA runs, read (list only) from the Kubernetes API in
 * the server's own namespace. Needs a Role allowing `list` on `pods` and `batch/jobs`.
 */
export class KubeAgents {
  private readonly core: CoreV1Api;
  private readonly batch: BatchV1Api;

  constructor(
    config: KubeConfig,
    readonly namespace: string,
  ) {
    this.core = config.makeApiClient(CoreV1Api);
    this.batch = config.makeApiClient(BatchV1Api);
  }

  async list(): Promise<KubeAgentsView> {
    const request = { namespace: this.namespace, labelSelector: SCALED_JOB_LABEL };
    const [jobs, pods] = await Promise.all([
      this.batch.listNamespacedJob(request),
      this.core.listNamespacedPod(request),
    ]);
    const iso = (value: Date | undefined): string | null => (value ? new Date(value).toISOString() : null);
    return {
      namespace: this.namespace,
      jobs: jobs.items.map((job) => ({
        name: job.metadata?.name ?? '',
        active: job.status?.active ?? 0,
        succeeded: job.status?.succeeded ?? 0,
        failed: job.status?.failed ?? 0,
        startedAt: iso(job.status?.startTime),
        completedAt: iso(job.status?.completionTime),
      })),
      pods: pods.items.map((pod) => ({
        name: pod.metadata?.name ?? '',
        job:
          pod.metadata?.labels?.['batch.kubernetes.io/job-name'] ??
          pod.metadata?.labels?.['job-name'] ??
          null,
        phase: pod.status?.phase ?? 'Unknown',
        node: pod.spec?.nodeName ?? null,
        startedAt: iso(pod.status?.startTime),
      })),
    };
  }
}

/**
 * KubeAgents from the in-cluster service account, or null when not running in
 * a cluster (no KUBERNETES_SERVICE_HOST or no mounted token).
 */
export function kubeAgentsInCluster(env: NodeJS.ProcessEnv = process.env): KubeAgents | null {
  if (!env.KUBERNETES_SERVICE_HOST || !existsSync(`${SERVICE_ACCOUNT_DIR}/token`)) return null;
  const config = new KubeConfig();
  config.loadFromCluster();
  const namespaceFile = `${SERVICE_ACCOUNT_DIR}/namespace`;
  const namespace = existsSync(namespaceFile) ? readFileSync(namespaceFile, 'utf8').trim() : 'default';
  return new KubeAgents(config, namespace);
}
