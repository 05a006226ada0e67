import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import type { TestApiServer } from './apiserver.js';

/** A CustomResourceDefinition as published by its project (apiextensions.k8s.io/v1). */
export interface Crd {
  apiVersion: string;
  kind: 'CustomResourceDefinition';
  metadata: { name: string };
  spec: {
    group: string;
    names: { kind: string; plural: string };
    versions: { name: string; schema: { openAPIV3Schema: JsonSchema } }[];
  };
}

/** The part of a CRD's structural schema that a strict check needs. */
export interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema;
  enum?: unknown[];
  required?: string[];
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
}

/**
 * A CRD file from a Go module, fetched through the Go module proxy (`go mod download`) at test
 * time, so the repository holds no copy: e.g. KEDA's config/crd/bases/keda.sh_scaledjobs.yaml.
 */
export async function crdFromGoModule(go: string, module: string, file: string): Promise<Crd> {
  const { stdout } = await promisify(execFile)(go, ['mod', 'download', '-json', module], {
    cwd: os.tmpdir(), // outside any go.mod
    maxBuffer: 16 * 1024 * 1024,
  }).catch((error: Error & { stdout?: string }) => {
    throw new Error(
      `go mod download ${module} failed (needs the Go module proxy): ${error.stdout ?? error.message}`,
    );
  });
  const info = JSON.parse(stdout) as { Dir?: string; Error?: string };
  if (!info.Dir) throw new Error(`go mod download ${module}: ${info.Error ?? 'no module directory'}`);
  return parse(await readFile(path.join(info.Dir, file), 'utf8')) as Crd;
}

function typeOf(value: unknown): string {
  if (Array.isArray(value)) return 'array';
  if (value === null) return 'null';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/**
 * Checks `value` against a structural schema the way the API server's strict field validation
 * and schema validation do: unknown fields (a property the schema does not declare, unless it
 * preserves unknown fields or has additionalProperties), wrong types, values outside an enum,
 * missing required fields. Returns one line per problem, with its JSON path.
 */
export function schemaErrors(value: unknown, schema: JsonSchema, at = ''): string[] {
  const errors: string[] = [];
  const actual = typeOf(value);
  if (schema['x-kubernetes-int-or-string']) {
    if (actual !== 'integer' && actual !== 'string') errors.push(`${at}: must be an integer or a string`);
    return errors;
  }
  if (schema.type && actual !== schema.type && !(schema.type === 'number' && actual === 'integer')) {
    return [`${at}: must be ${schema.type}, is ${actual}`];
  }
  if (schema.enum && !schema.enum.includes(value)) {
    errors.push(`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  }
  if (actual === 'array' && schema.items) {
    (value as unknown[]).forEach((item, i) => {
      errors.push(...schemaErrors(item, schema.items!, `${at}[${i}]`));
    });
  }
  if (actual === 'object') {
    const object = value as Record<string, unknown>;
    for (const key of schema.required ?? []) {
      if (!(key in object)) errors.push(`${at}: missing required field ${key}`);
    }
    for (const [key, child] of Object.entries(object)) {
      const declared = schema.properties?.[key];
      if (declared) errors.push(...schemaErrors(child, declared, `${at}.${key}`));
      else if (typeof schema.additionalProperties === 'object') {
        errors.push(...schemaErrors(child, schema.additionalProperties, `${at}.${key}`));
      } else if (!schema['x-kubernetes-preserve-unknown-fields'] && schema.additionalProperties !== true) {
        errors.push(`${at}: unknown field ${key}`);
      }
    }
  }
  return errors;
}

/** The schema of the CRD's served version for `apiVersion` (group/version). */
export function crdSchema(crd: Crd, apiVersion: string): JsonSchema {
  const version = crd.spec.versions.find((v) => `${crd.spec.group}/${v.name}` === apiVersion);
  if (!version) throw new Error(`${crd.metadata.name} serves no ${apiVersion}`);
  const schema = version.schema.openAPIV3Schema;
  // metadata is validated by the API server itself, not by the CRD schema.
  return {
    ...schema,
    properties: {
      ...schema.properties,
      metadata: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
    },
  };
}

/**
 * Creates each CRD in the API server and waits until it is really usable: its kind listed in
 * the group-version's discovery document and its collection answering. Both lag the 201 (and
 * each other) by a moment, which made tests that only waited for the collection flaky.
 */
export async function installCrds(api: TestApiServer, crds: Crd[]): Promise<void> {
  for (const crd of crds) {
    const created = await api.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
    if (created.status !== 201) {
      throw new Error(`creating CRD ${crd.metadata.name}: ${created.status} ${JSON.stringify(created.body)}`);
    }
  }
  for (const crd of crds) {
    const { group, names } = crd.spec;
    const groupVersion = `/apis/${group}/${crd.spec.versions[0]!.name}`;
    const served = async () => {
      const discovery = await api.request('GET', groupVersion);
      const listed = (discovery.body?.resources ?? []).some((r: { kind: string }) => r.kind === names.kind);
      return listed && (await api.request('GET', `${groupVersion}/${names.plural}`)).status === 200;
    };
    const deadline = Date.now() + 30_000;
    while (!(await served())) {
      if (Date.now() > deadline)
        throw new Error(`${names.kind} was not served 30 s after its CRD was created`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
