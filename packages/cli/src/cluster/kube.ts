import { accessSync, constants, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApiException, KubeConfig } from '@kubernetes/client-node';
import { CliError, EXIT } from '../errors.js';

/** Where raibid-ci runs (CONTRACT: namespace `raibid-system`). */
export const NAMESPACE = 'raibid-system';

/** k3s writes its admin kubeconfig here (root-readable unless installed with --write-kubeconfig-mode). */
export const K3S_KUBECONFIG = '/etc/rancher/k3s/k3s.yaml';

function readable(file: string): boolean {
  try {
    accessSync(file, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The user's kubeconfig, the way kubectl finds it: $KUBECONFIG, else ~/.kube/config; on a k3s host
 * without either, k3s's own file. The error says how to point raibid at the cluster.
 */
export function loadKubeConfig(env: Record<string, string | undefined>): KubeConfig {
  const config = new KubeConfig();
  const home = env.HOME || os.homedir();
  const userFile = path.join(home, '.kube', 'config');
  let source: string;
  try {
    if (env.KUBECONFIG) {
      source = `KUBECONFIG=${env.KUBECONFIG}`;
      const files = env.KUBECONFIG.split(path.delimiter).filter(Boolean);
      config.loadFromFile(files[0]!);
      for (const file of files.slice(1)) {
        const more = new KubeConfig();
        more.loadFromFile(file);
        config.mergeConfig(more);
      }
    } else if (existsSync(userFile)) {
      source = userFile;
      config.loadFromFile(userFile);
    } else if (readable(K3S_KUBECONFIG)) {
      source = K3S_KUBECONFIG;
      config.loadFromFile(K3S_KUBECONFIG);
    } else {
      throw new CliError(
        `no kubeconfig: set KUBECONFIG, or copy ${K3S_KUBECONFIG} to ~/.kube/config (infra/k3s/install.sh does)`,
        EXIT.usage,
        'no_kubeconfig',
      );
    }
  } catch (error) {
    if (error instanceof CliError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new CliError(`cannot read the kubeconfig (${source!}): ${reason}`, EXIT.usage, 'no_kubeconfig');
  }
  if (!config.getCurrentCluster()) {
    throw new CliError(
      `the kubeconfig (${source}) has no current context; choose one with: kubectl config use-context <name>`,
      EXIT.usage,
      'no_kubeconfig',
    );
  }
  return config;
}

/** The API server the kubeconfig points at, for messages. */
export function apiServerOf(config: KubeConfig): string {
  return config.getCurrentCluster()?.server ?? 'the Kubernetes API';
}

/** The `message` of a Kubernetes Status body (a string or an object), if there is one. */
function statusMessage(body: unknown): string | undefined {
  let value = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body);
    } catch {
      return body.trim() || undefined;
    }
  }
  if (value && typeof value === 'object' && 'message' in value && typeof value.message === 'string') {
    return value.message;
  }
  return undefined;
}

/** The HTTP status of a failed Kubernetes call, or undefined when no answer came. */
export function kubeStatus(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

function networkCode(error: unknown): string | undefined {
  for (let e: unknown = error; e && typeof e === 'object'; e = (e as { cause?: unknown }).cause) {
    if ('code' in e && typeof e.code === 'string') return e.code;
  }
  return undefined;
}

/**
 * One line for a failed Kubernetes call: what was being done, why it failed, what to do. 404s are
 * the caller's to explain (they know what is missing); this covers the rest.
 */
export function kubeError(config: KubeConfig, doing: string, error: unknown): CliError {
  if (error instanceof CliError) return error;
  const server = apiServerOf(config);
  if (error instanceof ApiException) {
    const message = statusMessage(error.body) ?? `HTTP ${error.code}`;
    if (error.code === 401) {
      return new CliError(
        `${doing}: the Kubernetes API at ${server} refused the kubeconfig's credentials (${message}); check KUBECONFIG`,
        EXIT.unavailable,
        'kube_unauthorized',
      );
    }
    if (error.code === 403) {
      return new CliError(
        `${doing}: not allowed (${message}); use a kubeconfig with admin rights in ${NAMESPACE}`,
        EXIT.unavailable,
        'kube_forbidden',
      );
    }
    const exit = error.code >= 500 ? EXIT.unavailable : EXIT.usage;
    return new CliError(`${doing}: ${message}`, exit, `kube_${error.code}`);
  }
  const code = networkCode(error);
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'ETIMEDOUT') {
    return new CliError(
      `${doing}: cannot reach the Kubernetes API at ${server} (${code}); is k3s running? (sudo systemctl status k3s; infra/k3s/install.sh installs it)`,
      EXIT.unavailable,
      'kube_unreachable',
    );
  }
  const reason = error instanceof Error ? error.message : String(error);
  return new CliError(`${doing}: ${reason} (Kubernetes API at ${server})`, EXIT.unavailable, 'kube_error');
}
