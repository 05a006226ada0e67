import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from './tools.js';

/** One rendered Kubernetes object; tests narrow the parts they check. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [key: string]: unknown };
  // biome-ignore lint/suspicious/noExplicitAny: spec, data, rules, ... of any kind.
  [field: string]: any;
}

/**
 * Renders tanka/environments/<env> with the real Tanka, exactly as the Tiltfile does
 * (`tk show --dangerous-allow-redirect`), and parses the YAML stream into objects.
 * `args` are extra tk flags, e.g. ['--tla-code', 'liveUpdate=true'].
 */
export async function renderEnvironment(tk: string, env: string, args: string[] = []): Promise<KubeObject[]> {
  const dir = path.join('tanka', 'environments', env);
  const { stdout } = await promisify(execFile)(tk, ['show', '--dangerous-allow-redirect', dir, ...args], {
    cwd: REPO_ROOT,
    maxBuffer: 64 * 1024 * 1024,
  }).catch((error: Error & { stderr?: string }) => {
    throw new Error(`tk show ${dir} failed: ${error.stderr ?? error.message}`);
  });
  const objects: KubeObject[] = [];
  for (const doc of parseAllDocuments(stdout)) {
    if (doc.errors.length > 0)
      throw new Error(`tk show ${dir} printed invalid YAML: ${doc.errors[0]!.message}`);
    const value = doc.toJS() as KubeObject | null;
    if (value !== null) objects.push(value);
  }
  if (objects.length === 0) throw new Error(`tk show ${dir} printed no objects`);
  return objects;
}

/** The one object of `kind` named `name` (throws, naming what exists, when there is none). */
export function find(objects: KubeObject[], kind: string, name: string): KubeObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) {
    const have = objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ');
    throw new Error(`no ${kind}/${name} among: ${have}`);
  }
  return found;
}
