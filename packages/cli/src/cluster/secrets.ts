import {
  AppsV1Api,
  CoreV1Api,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { CliError, EXIT } from '../errors.js';
import { kubeError, kubeStatus, NAMESPACE } from './kube.js';

/** The one Secret of raibid-ci, created by infra/k3s/secrets.sh (CONTRACT). */
export const SECRET_NAME = 'raibid-secrets';
export const SERVER_DEPLOYMENT = 'raibid-server';

export type SecretKey = 'api-token' | 'webhook-secret' | 'gitea-admin-password' | 'gitea-token';

/** The environment variable that overrides each key, so the tools also work without Kubernetes. */
export const ENV_OVERRIDE: Record<SecretKey, string> = {
  'api-token': 'RAIBID_API_TOKEN',
  'webhook-secret': 'GITEA_WEBHOOK_SECRET',
  'gitea-admin-password': 'RAIBID_GITEA_ADMIN_PASSWORD',
  'gitea-token': 'GITEA_TOKEN',
};

/**
 * The values of raibid-system/raibid-secrets, each overridden by its environment variable. The
 * Kubernetes API is asked only when a value is not in the environment (and then once).
 */
export class RaibidSecrets {
  private data: Promise<Record<string, string>> | null = null;
  private kubeConfig: KubeConfig | null = null;

  constructor(
    private readonly env: Record<string, string | undefined>,
    private readonly kube: () => KubeConfig,
  ) {}

  /** Whether `key` comes from the environment (so nothing is read from or written to the Secret). */
  fromEnv(key: SecretKey): boolean {
    return Boolean(this.env[ENV_OVERRIDE[key]]?.trim());
  }

  async get(key: SecretKey): Promise<string | undefined> {
    if (this.fromEnv(key)) return this.env[ENV_OVERRIDE[key]]!.trim();
    const value = (await this.read())[key];
    return value ? value : undefined;
  }

  /** The value of `key`; a missing one is an error that says where it should come from. */
  async require(key: SecretKey): Promise<string> {
    const value = await this.get(key);
    if (value) return value;
    throw new CliError(
      `${NAMESPACE}/${SECRET_NAME} has no ${key}: run infra/k3s/secrets.sh (or set ${ENV_OVERRIDE[key]})`,
      EXIT.usage,
      'missing_secret',
    );
  }

  /** Writes the Gitea token into the Secret (merge patch: the other keys stay as they are). */
  async setGiteaToken(token: string): Promise<void> {
    const config = this.config();
    const core = config.makeApiClient(CoreV1Api);
    try {
      await core.patchNamespacedSecret(
        {
          name: SECRET_NAME,
          namespace: NAMESPACE,
          body: { data: { 'gitea-token': Buffer.from(token).toString('base64') } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    } catch (error) {
      throw kubeError(config, `cannot store the Gitea token in ${NAMESPACE}/${SECRET_NAME}`, error);
    }
    const data = await this.read();
    data['gitea-token'] = token;
  }

  /**
   * Restarts Deployment raibid-server the way `kubectl rollout restart` does (a new pod-template
   * annotation), so its pods start again with the Secret's current values. False when it is not deployed.
   */
  async restartServer(): Promise<boolean> {
    const config = this.config();
    const apps = config.makeApiClient(AppsV1Api);
    try {
      await apps.patchNamespacedDeployment(
        {
          name: SERVER_DEPLOYMENT,
          namespace: NAMESPACE,
          body: {
            spec: {
              template: {
                metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': new Date().toISOString() } },
              },
            },
          },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      return true;
    } catch (error) {
      if (kubeStatus(error) === 404) return false;
      throw kubeError(config, `cannot restart Deployment ${NAMESPACE}/${SERVER_DEPLOYMENT}`, error);
    }
  }

  private config(): KubeConfig {
    this.kubeConfig ??= this.kube();
    return this.kubeConfig;
  }

  private read(): Promise<Record<string, string>> {
    this.data ??= this.readSecret();
    return this.data;
  }

  private async readSecret(): Promise<Record<string, string>> {
    const config = this.config();
    const core = config.makeApiClient(CoreV1Api);
    try {
      const secret = await core.readNamespacedSecret({ name: SECRET_NAME, namespace: NAMESPACE });
      const values: Record<string, string> = {};
      for (const [key, value] of Object.entries(secret.data ?? {})) {
        values[key] = Buffer.from(value, 'base64').toString('utf8').trim();
      }
      return values;
    } catch (error) {
      if (kubeStatus(error) === 404) {
        throw new CliError(
          `Secret ${NAMESPACE}/${SECRET_NAME} does not exist: run infra/k3s/secrets.sh (or set the values in the environment: see raibid <command> --help)`,
          EXIT.usage,
          'missing_secret',
        );
      }
      throw kubeError(config, `cannot read Secret ${NAMESPACE}/${SECRET_NAME}`, error);
    }
  }
}
