import { isMap, isNode, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { z } from 'zod';
import { durationSchema } from './duration.js';
import { jobEnvSchema } from './job.js';
import { DEFAULT_POOL, poolSchema } from './pool.js';

export const PIPELINE_FILE = '.raibid.yml';
export const DEFAULT_JOB_TIMEOUT_MS = 60 * 60_000;
/**
 * The longest job (and step) timeout a pipeline may ask for. In a cluster the agent pod is
 * ended after a fixed deadline (tanka/lib/raibid/config.libsonnet, activeDeadlineSeconds)
 * sized for it; a longer job would be killed by Kubernetes and re-queued by the reaper.
 */
export const MAX_JOB_TIMEOUT_MS = 6 * 3_600_000;

const timeoutSchema = durationSchema.refine((ms) => ms <= MAX_JOB_TIMEOUT_MS, 'must be at most 6h');

/** YAML scalars (numbers, booleans) in `env` become strings, as a shell would see them. */
const envSchema = z
  .record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String))
  .pipe(jobEnvSchema);

const stepSchema = z.strictObject({
  name: z
    .string()
    .min(1)
    .max(100)
    .regex(/^[^\n\r]+$/, 'must be one line'),
  run: z.string().min(1, 'must be a command to run'),
  timeout: timeoutSchema.optional(),
  env: envSchema.default({}),
});

/** `.raibid.yml`, parsed (CONTRACT.md, "Pipeline file"). Durations are milliseconds. */
export const pipelineSchema = z
  .strictObject({
    version: z.literal(1, 'must be 1'),
    /** The agent pool the job needs; the server routes on it before any agent starts. */
    'runs-on': poolSchema.default(DEFAULT_POOL),
    timeout: timeoutSchema.default(DEFAULT_JOB_TIMEOUT_MS),
    env: envSchema.default({}),
    steps: z.array(stepSchema).min(1, 'needs at least one step'),
  })
  .superRefine((pipeline, ctx) => {
    const seen = new Set<string>();
    pipeline.steps.forEach((step, index) => {
      if (seen.has(step.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['steps', index, 'name'],
          message: `"${step.name}" is used twice`,
        });
      }
      seen.add(step.name);
    });
  });

export type Pipeline = z.infer<typeof pipelineSchema>;
export type PipelineStep = Pipeline['steps'][number];

export interface PipelineProblem {
  /** 1-based line in the file, when known. */
  line: number | null;
  /** Dotted path of the field, e.g. `steps[1].run`. */
  field: string;
  message: string;
}

export class PipelineError extends Error {
  override name = 'PipelineError';
  constructor(
    readonly file: string,
    readonly problems: PipelineProblem[],
  ) {
    super(
      problems
        .map((p) => `${file}${p.line ? `:${p.line}` : ''}: ${p.field ? `${p.field}: ` : ''}${p.message}`)
        .join('\n'),
    );
  }
}

function fieldName(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, key) => {
    if (typeof key === 'number') return `${acc}[${key}]`;
    return acc ? `${acc}.${String(key)}` : String(key);
  }, '');
}

function problemMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown field(s) ${issue.keys.join(', ')}`;
  if (issue.code === 'invalid_type' && / received undefined$/.test(issue.message)) {
    return `is required (${issue.expected})`;
  }
  return issue.message;
}

/** The YAML node at `path`, or the deepest existing ancestor (for "missing field" errors). */
function nodeAt(root: unknown, path: readonly PropertyKey[]): Node | null {
  let node: unknown = root;
  let found: Node | null = isNode(root) ? root : null;
  for (const key of path) {
    let next: unknown;
    if (isMap(node)) {
      const pair = node.items.find(
        (item) => isNode(item.key) && (item.key as { value?: unknown }).value === key,
      );
      // Point at the key for a bad value of a known field.
      next = pair?.value ?? undefined;
      if (pair && isNode(pair.key) && !isNode(pair.value)) next = pair.key;
    } else if (isSeq(node) && typeof key === 'number') {
      next = node.items[key];
    }
    if (!isNode(next)) break;
    found = next;
    node = next;
  }
  return found;
}

/**
 * Parses the text of a pipeline file into a typed Pipeline. Throws PipelineError
 * whose problems name the line and field, so the job log can tell the user what to fix.
 */
export function parsePipeline(text: string, file = PIPELINE_FILE): Pipeline {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new PipelineError(
      file,
      doc.errors.map((e) => ({
        line: e.linePos?.[0]?.line ?? null,
        field: '',
        message: (e.message.split('\n')[0] ?? 'invalid YAML').replace(/ at line \d+, column \d+:?$/, ''),
      })),
    );
  }
  const result = pipelineSchema.safeParse(doc.toJS() ?? {});
  if (result.success) return result.data;
  throw new PipelineError(
    file,
    result.error.issues.map((issue) => {
      const node = nodeAt(doc.contents, issue.path);
      const offset = node?.range?.[0];
      return {
        line: offset === undefined ? null : lineCounter.linePos(offset).line,
        field: fieldName(issue.path),
        message: problemMessage(issue),
      };
    }),
  );
}
