import { AppsV1Api, CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { CliError, EXIT } from '../errors.js';
import { kubeError, kubeStatus, NAMESPACE } from './kube.js';
import { SERVER_DEPLOYMENT } from './secrets.js';

export interface PodLog {
  pod: string;
  phase: string;
  /** The log's last lines, or null when it could not be read (`error` says why). */
  lines: string[] | null;
  error: string | null;
}

/** The label selector of Deployment raibid-server's pods (from the Deployment itself). */
export async function serverPodSelector(config: KubeConfig): Promise<string> {
  const apps = config.makeApiClient(AppsV1Api);
  try {
    const deployment = await apps.readNamespacedDeployment({ name: SERVER_DEPLOYMENT, namespace: NAMESPACE });
    const labels = deployment.spec?.selector.matchLabels ?? {};
    const selector = Object.entries(labels)
      .map(([key, value]) => `${key}=${value}`)
      .join(',');
    if (!selector) {
      throw new CliError(
        `Deployment ${NAMESPACE}/${SERVER_DEPLOYMENT} selects its pods with matchExpressions only; use kubectl logs`,
        EXIT.usage,
      );
    }
    return selector;
  } catch (error) {
    if (kubeStatus(error) === 404) {
      throw new CliError(
        `Deployment ${NAMESPACE}/${SERVER_DEPLOYMENT} does not exist: deploy raibid-ci first (tilt up, or see docs/deploy.md)`,
        EXIT.usage,
        'not_deployed',
      );
    }
    throw kubeError(config, `cannot read Deployment ${NAMESPACE}/${SERVER_DEPLOYMENT}`, error);
  }
}

/** Why a pod's log cannot be read, in words a user can act on. */
function logError(pod: V1Pod, error: unknown, config: KubeConfig): string {
  const name = pod.metadata?.name ?? '';
  if (!pod.spec?.nodeName) {
    return `pod ${name} is not on a node yet (${pod.status?.phase ?? 'Pending'}): kubectl -n ${NAMESPACE} describe pod ${name}`;
  }
  return kubeError(config, `cannot read the log of pod ${name}`, error).message;
}

/** The last `tail` lines of each raibid-server pod's log, oldest pod first. */
export async function serverLogs(config: KubeConfig, tail: number): Promise<PodLog[]> {
  const selector = await serverPodSelector(config);
  const core = config.makeApiClient(CoreV1Api);
  let pods: V1Pod[];
  try {
    pods = (await core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: selector })).items;
  } catch (error) {
    throw kubeError(config, `cannot list the raibid-server pods in ${NAMESPACE}`, error);
  }
  if (pods.length === 0) {
    throw new CliError(
      `no raibid-server pod runs (selector ${selector}): kubectl -n ${NAMESPACE} get deployment,pods`,
      EXIT.unavailable,
      'no_pods',
    );
  }
  const created = (pod: V1Pod) => new Date(pod.metadata?.creationTimestamp ?? 0).getTime();
  pods.sort((a, b) => created(a) - created(b));
  return Promise.all(
    pods.map(async (pod): Promise<PodLog> => {
      const name = pod.metadata?.name ?? '';
      const phase = pod.status?.phase ?? 'Unknown';
      try {
        const text = await core.readNamespacedPodLog({
          name,
          namespace: NAMESPACE,
          container: pod.spec?.containers[0]?.name,
          tailLines: tail,
        });
        const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
        return { pod: name, phase, lines, error: null };
      } catch (error) {
        return { pod: name, phase, lines: null, error: logError(pod, error, config) };
      }
    }),
  );
}
