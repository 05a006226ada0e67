// The real Tilt loads the real Tiltfile (`tilt alpha tiltfile-result`): Tilt's own load result,
// with the manifests tk renders, the image targets, live-update steps, resource graph, links and
// port forwards. It needs no cluster and no Docker daemon; the Tiltfile's cluster checks ask
// `kubectl`, which here is a stand-in answering like a healthy k3s, or a stopped one, and the
// registry check reaches a stand-in registry on 127.0.0.1.
//
// The JSON holds the values of any Secret in the manifests: it is never printed, and assertions
// only ever show the fields they pick out.
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { needTools, REPO_ROOT } from './support/tools.js';

const tools = needTools('tilt', 'tk', 'buildifier', 'curl');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv, cwd = REPO_ROOT): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') reject(error);
      else resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
  });
}

/** How the kubectl stand-in answers the Tiltfile's checks. */
type ClusterState = 'healthy' | 'stopped' | 'no-node-ready' | 'no-registry-configmap';

/** The parts of Tilt's TiltfileLoadResult JSON (internal/tiltfile/tiltfile.go) the tests read. */
interface Forward {
  localPort: number;
  containerPort: number;
  name?: string;
  path?: string;
}
interface Manifest {
  Name: string;
  Labels: Record<string, string> | null;
  ResourceDependencies: string[] | null;
  TriggerMode: number;
  ImageTargets: {
    selector: string;
    LiveUpdateSpec: { syncs?: { localPath: string; containerPath: string }[]; stopPaths?: string[] };
    BuildDetails: {
      dockerfileContents?: string;
      target?: string;
      contextIgnores?: { patterns?: string[] }[];
    };
  }[];
  DeployTarget: {
    yaml?: string;
    imageMaps?: string[];
    imageLocators?: { objectSelector: { apiVersionRegexp: string; kindRegexp: string }; path: string }[];
    portForwardTemplateSpec?: { forwards: Forward[] };
    Links?: { URL: { Scheme: string; Host: string; Path: string }; Name: string }[] | null;
    PodReadinessMode?: string;
    UpdateCmdSpec?: { args: string[] };
    AllowParallel?: boolean;
    Deps?: string[] | null;
  };
}
interface LoadResult {
  Manifests: Manifest[];
  Error: unknown;
  Secrets: Record<string, unknown> | null;
  DefaultRegistry: { host: string } | null;
}

// pkg/model/trigger_mode.go
const TRIGGER_MODE_AUTO = 0;
const TRIGGER_MODE_MANUAL = 2; // manual, and not started by `tilt up` (auto_init=False)

// A kubeconfig like the one infra/k3s/install.sh copies from k3s: every name is `default`.
function kubeconfig(context: string, server: string): string {
  return `apiVersion: v1
kind: Config
clusters:
- name: default
  cluster: {server: '${server}', insecure-skip-tls-verify: true}
users:
- name: default
  user: {token: not-a-real-token}
contexts:
- name: ${context}
  context: {cluster: default, user: default}
current-context: ${context}
`;
}

// Answers the commands the Tiltfile runs; anything else is an error, so a new kubectl call in
// the Tiltfile must be taught here. `apply -f -` keeps what it was given in applied.yaml.
function kubectlStandIn(state: ClusterState, dir: string, registry: string): string {
  const refused =
    'The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?';
  const hosting =
    state === 'no-registry-configmap' ? '' : `host: "${registry}"\\nhelp: "https://kep.k8s.io/1755"\\n`;
  return `#!/bin/sh
printf '%s\\n' "$*" >> '${dir}/kubectl.log'
${state === 'stopped' ? `echo '${refused}' >&2; exit 1` : ''}
case "$*" in
  'get --raw=/readyz') echo ok ;;
  'get nodes -o '*) echo '${state === 'no-node-ready' ? 'False' : 'True'}' ;;
  '-n kube-public get configmap local-registry-hosting '*) printf '${hosting}' ;;
  'apply -f -') cat > '${dir}/applied.yaml'; echo 'helmchart.helm.cattle.io/keda created' ;;
  'wait --for=create '* | 'wait --for=jsonpath='*) echo 'customresourcedefinition condition met' ;;
  '-n keda rollout status '*) echo 'deployment "keda-operator" successfully rolled out' ;;
  *) echo "kubectl stand-in: unexpected arguments: $*" >&2; exit 1 ;;
esac
`;
}

/** A registry's /v2/ endpoint, all the Tiltfile's check asks. */
function startRegistry(): Promise<http.Server> {
  const server = http.createServer((request, response) => {
    response.writeHead(request.url === '/v2/' ? 200 : 404, { 'content-type': 'application/json' });
    response.end('{}');
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** A port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = await new Promise<http.Server>((resolve) => {
    const s = http.createServer();
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe.skipIf(tools.skip)('the Tiltfile, loaded by the real Tilt', () => {
  let work: string;
  let registry: http.Server;
  let registryHost: string;

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'raibid-tiltfile-'));
    registry = await startRegistry();
    registryHost = `127.0.0.1:${(registry.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => registry?.close(resolve));
    if (work) await rm(work, { recursive: true, force: true });
  });

  interface Sandbox {
    dir: string;
    env: NodeJS.ProcessEnv;
  }

  /** A HOME with a kubeconfig and a PATH of the stand-in kubectl, the real tk, sh and curl. */
  async function sandbox(
    state: ClusterState,
    options: { context?: string; withTk?: boolean; server?: string } = {},
  ): Promise<Sandbox> {
    const dir = await mkdtemp(path.join(work, `${state}-`));
    const bin = path.join(dir, 'bin');
    await mkdir(path.join(dir, 'home', '.kube'), { recursive: true });
    await mkdir(bin);
    const config = path.join(dir, 'home', '.kube', 'config');
    // context '' = no kubeconfig at all
    if (options.context !== '')
      await writeFile(
        config,
        kubeconfig(options.context ?? 'default', options.server ?? 'https://127.0.0.1:6443'),
      );
    await writeFile(path.join(bin, 'kubectl'), kubectlStandIn(state, dir, registryHost));
    await chmod(path.join(bin, 'kubectl'), 0o755);
    if (options.withTk ?? true) await symlink(tools.path.tk!, path.join(bin, 'tk'));
    return {
      dir,
      env: {
        HOME: path.join(dir, 'home'),
        KUBECONFIG: config,
        PATH: `${bin}:/usr/bin:/bin`,
        TILT_DISABLE_ANALYTICS: '1',
      },
    };
  }

  function tiltfileResult(box: Sandbox, args: string[] = []): Promise<Run> {
    const tiltArgs = ['alpha', 'tiltfile-result', '-f', path.join(REPO_ROOT, 'Tiltfile')];
    return run(tools.path.tilt!, args.length > 0 ? [...tiltArgs, '--', ...args] : tiltArgs, box.env);
  }

  /** Loads the Tiltfile; on failure the error shows Tilt's stderr (never the JSON). */
  async function load(box: Sandbox, args: string[] = []): Promise<LoadResult> {
    const result = await tiltfileResult(box, args);
    if (result.code !== 0)
      throw new Error(`tilt alpha tiltfile-result exited ${result.code}:\n${result.stderr}`);
    return JSON.parse(result.stdout) as LoadResult;
  }

  function manifest(result: LoadResult, name: string): Manifest {
    const found = result.Manifests.find((m) => m.Name === name);
    if (!found)
      throw new Error(`no resource ${name}; have ${result.Manifests.map((m) => m.Name).join(', ')}`);
    return found;
  }

  // biome-ignore lint/suspicious/noExplicitAny: rendered Kubernetes objects of any kind.
  function objects(m: Manifest): any[] {
    return parseAllDocuments(m.DeployTarget.yaml ?? '')
      .map((doc) => doc.toJS())
      .filter((o) => o !== null);
  }

  function kindsAndNames(m: Manifest): string[] {
    return objects(m).map((o) => `${o.kind}/${o.metadata.name}`);
  }

  describe('against a healthy k3s', () => {
    let box: Sandbox;
    let result: LoadResult;
    beforeAll(async () => {
      box = await sandbox('healthy');
      result = await load(box);
    });

    it('loads without error and renders no Secret (raibid-secrets is made once by infra/k3s/secrets.sh)', () => {
      expect(result.Error).toBeNull();
      expect(Object.keys(result.Secrets ?? {}).length).toBe(0);
    });

    it("has exactly the contract's resources, labelled, plus the server's bundle build and Tilt's uncategorized", () => {
      const labels = Object.fromEntries(result.Manifests.map((m) => [m.Name, Object.keys(m.Labels ?? {})]));
      expect(labels).toEqual({
        redis: ['infrastructure'],
        gitea: ['infrastructure'],
        keda: ['infrastructure'],
        flux: ['infrastructure'],
        server: ['application'],
        'server-bundle': ['application'],
        agent: ['application'],
        'seed-gitea': ['tools'],
        'trigger-test-job': ['tools'],
        'scale-agent': ['tools'],
        'view-server-logs': ['tools'],
        uncategorized: [],
      });
    });

    it('puts each object in its resource; uncategorized (applied first) holds nothing that needs KEDA', () => {
      expect(kindsAndNames(manifest(result, 'redis'))).toEqual(
        expect.arrayContaining(['StatefulSet/redis', 'Service/redis']),
      );
      expect(kindsAndNames(manifest(result, 'gitea'))).toEqual(
        expect.arrayContaining(['StatefulSet/gitea', 'Service/gitea-http']),
      );
      expect(kindsAndNames(manifest(result, 'server'))).toEqual(
        expect.arrayContaining(['Deployment/raibid-server', 'Service/raibid-server']),
      );
      expect(kindsAndNames(manifest(result, 'agent'))).toContain('ScaledJob/raibid-agent');
      expect(kindsAndNames(manifest(result, 'flux'))).toEqual(['HelmChart/flux']);
      const uncategorized = objects(manifest(result, 'uncategorized'));
      expect(uncategorized.map((o) => `${o.kind}/${o.metadata.name}`)).toContain('Namespace/raibid-system');
      expect(uncategorized.filter((o) => String(o.apiVersion).startsWith('keda.sh/'))).toEqual([]);
      // KEDA's chart is applied by the keda resource, never by Tilt's apply of the manifests.
      const charts = result.Manifests.flatMap((m) => (m.DeployTarget.yaml ? kindsAndNames(m) : []));
      expect(charts).not.toContain('HelmChart/keda');
    });

    it('orders the graph: server after redis and its bundle, agent after server and a working KEDA', () => {
      const deps = Object.fromEntries(result.Manifests.map((m) => [m.Name, m.ResourceDependencies ?? []]));
      expect(deps.server).toEqual(['redis', 'server-bundle']);
      expect(deps.agent).toEqual(['server', 'keda']);
      expect(deps.redis).toEqual([]);
      expect(deps.gitea).toEqual([]);
      expect(deps.keda).toEqual([]);
    });

    it('forwards 8080 and 8081 to the server, 3000 to Gitea, 6379 to Redis', () => {
      const forwards = (name: string) =>
        (manifest(result, name).DeployTarget.portForwardTemplateSpec?.forwards ?? []).map((f) => ({
          local: f.localPort,
          container: f.containerPort,
          name: f.name,
          path: f.path,
        }));
      expect(forwards('server')).toEqual([
        { local: 8080, container: 8080, name: 'UI', path: undefined },
        { local: 8081, container: 8081, name: 'metrics', path: 'metrics' },
      ]);
      expect(forwards('gitea')).toEqual([{ local: 3000, container: 3000, name: 'Gitea', path: undefined }]);
      expect(forwards('redis')).toEqual([{ local: 6379, container: 6379, name: undefined, path: undefined }]);
    });

    it('links the API docs next to the UI and metrics forwards', () => {
      const links = (manifest(result, 'server').DeployTarget.Links ?? []).map(
        (l) => `${l.Name} ${l.URL.Scheme}://${l.URL.Host}${l.URL.Path}`,
      );
      expect(links).toEqual(['API docs http://localhost:8080/docs']);
    });

    it("builds the agent image and injects it into the ScaledJob's job template", () => {
      const agent = manifest(result, 'agent');
      expect(agent.ImageTargets.map((t) => t.selector)).toEqual(['raibid-agent']);
      expect(agent.DeployTarget.imageMaps).toEqual(['raibid-agent']);
      expect(agent.DeployTarget.imageLocators).toEqual([
        {
          objectSelector: { apiVersionRegexp: '(?i)keda.sh/v1alpha1', kindRegexp: '(?i)ScaledJob' },
          path: '{.spec.jobTargetRef.template.spec.containers[*].image}',
        },
      ]);
      expect(agent.DeployTarget.PodReadinessMode).toBe('ignore');
      // What that locator points at in the rendered ScaledJob is the name Tilt replaces with the
      // pushed ref; imagePullPolicy must be there for Tilt to set it (internal/k8s/locator.go).
      const scaledJob = objects(agent).find((o) => o.kind === 'ScaledJob');
      const containers = scaledJob.spec.jobTargetRef.template.spec.containers;
      expect(containers.map((c: { image: string }) => c.image)).toEqual(['raibid-agent']);
      expect(containers[0].imagePullPolicy).toBe('IfNotPresent');
      expect(agent.ImageTargets[0]!.LiveUpdateSpec.syncs ?? []).toEqual([]);
    });

    it('builds the server dev target and live-updates it by syncing the host-built bundle', () => {
      const server = manifest(result, 'server');
      expect(server.ImageTargets.map((t) => t.selector)).toEqual(['raibid-server']);
      const image = server.ImageTargets[0]!;
      expect(image.BuildDetails.target).toBe('dev');
      expect(image.BuildDetails.dockerfileContents).toContain('FROM server-base AS dev');
      expect(image.LiveUpdateSpec.syncs).toEqual([
        { localPath: 'packages/server/dist', containerPath: '/app/packages/server/dist' },
      ]);
      expect(image.LiveUpdateSpec.stopPaths).toEqual(
        expect.arrayContaining(['pnpm-lock.yaml', 'packages/server/package.json']),
      );
      // Sources are not in the build context, so an edit there never rebuilds the image.
      const patterns = image.BuildDetails.contextIgnores?.flatMap((i) => i.patterns ?? []) ?? [];
      expect(patterns).toContain('!packages/server/dist');
      expect(patterns.some((p) => p.includes('src'))).toBe(false);
      const [deployment] = objects(server).filter((o) => o.kind === 'Deployment');
      const container = deployment.spec.template.spec.containers[0];
      expect(container.image).toBe('raibid-server');
      expect(container.securityContext?.readOnlyRootFilesystem ?? false).toBe(false);
    });

    it('rebuilds the bundle on the host when server or common sources change', () => {
      const bundle = manifest(result, 'server-bundle');
      expect(bundle.DeployTarget.UpdateCmdSpec?.args).toEqual(['sh', '-c', 'node scripts/build.mjs server']);
      expect((bundle.DeployTarget.Deps ?? []).map((d) => path.relative(REPO_ROOT, d))).toEqual([
        'packages/server/src',
        'packages/common/src',
        'scripts/build.mjs',
      ]);
      expect(bundle.TriggerMode).toBe(TRIGGER_MODE_AUTO);
    });

    it('has the four tools as manual resources that tilt up does not start', () => {
      const tool = (name: string) => {
        const m = manifest(result, name);
        expect(m.DeployTarget.AllowParallel, `${name} runs while another tool runs`).toBe(true);
        return { trigger: m.TriggerMode, cmd: m.DeployTarget.UpdateCmdSpec?.args };
      };
      expect(tool('seed-gitea')).toEqual({
        trigger: TRIGGER_MODE_MANUAL,
        cmd: ['sh', '-c', 'pnpm raibid seed-gitea'],
      });
      expect(tool('trigger-test-job')).toEqual({
        trigger: TRIGGER_MODE_MANUAL,
        cmd: ['sh', '-c', 'pnpm raibid trigger-test-job'],
      });
      expect(tool('scale-agent')).toEqual({
        trigger: TRIGGER_MODE_MANUAL,
        cmd: ['sh', '-c', 'pnpm raibid scale-agent 1'],
      });
      expect(tool('view-server-logs')).toEqual({
        trigger: TRIGGER_MODE_MANUAL,
        cmd: ['sh', '-c', 'pnpm raibid server-logs'],
      });
    });

    it('leaves the registry to the cluster when it advertises one (no default_registry)', () => {
      expect(result.DefaultRegistry).toBeNull();
    });

    it("keda applies KEDA's HelmChart alone, then waits for its CRD and its operator", async () => {
      const keda = manifest(result, 'keda');
      expect(keda.TriggerMode).toBe(TRIGGER_MODE_AUTO);
      // Its wait may take minutes; other local resources (the server's bundle) run meanwhile.
      expect(keda.DeployTarget.AllowParallel).toBe(true);
      const args = keda.DeployTarget.UpdateCmdSpec?.args ?? [];
      expect(args.slice(0, 2)).toEqual(['sh', '-c']);
      // Run the very command Tilt runs, with the real tk and the stand-in kubectl.
      const ran = await run('sh', ['-c', args[2]!], box.env);
      expect(ran.code, ran.stderr).toBe(0);
      const applied = parseAllDocuments(await readFile(path.join(box.dir, 'applied.yaml'), 'utf8'))
        .map((d) => d.toJS())
        .filter((o) => o !== null);
      expect(applied.map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`)).toEqual([
        'HelmChart/kube-system/keda',
      ]);
      expect(applied[0].spec.targetNamespace).toBe('keda');
      const calls = (await readFile(path.join(box.dir, 'kubectl.log'), 'utf8')).trim().split('\n');
      expect(calls.slice(-4)).toEqual([
        'apply -f -',
        'wait --for=create --timeout=300s crd/scaledjobs.keda.sh',
        'wait --for=jsonpath={.status.conditions[?(@.type=="Established")].status}=True --timeout=60s crd/scaledjobs.keda.sh',
        '-n keda rollout status deployment/keda-operator --timeout=300s',
      ]);
    });
  });

  describe('settings', () => {
    it('--no-flux leaves Flux out entirely', async () => {
      const result = await load(await sandbox('healthy'), ['--no-flux']);
      expect(result.Manifests.map((m) => m.Name)).not.toContain('flux');
      const all = result.Manifests.flatMap((m) => kindsAndNames(m));
      expect(all).not.toContain('HelmChart/flux');
    });

    it('--agent-max sets how many agent Jobs KEDA may run at once', async () => {
      const result = await load(await sandbox('healthy'), ['--agent-max=3']);
      const scaledJob = objects(manifest(result, 'agent')).find((o) => o.kind === 'ScaledJob');
      expect(scaledJob.spec.maxReplicaCount).toBe(3);
    });

    it('--agent-warm keeps that many agents waiting: the ScaledJob minReplicaCount, with the warm idle timeout', async () => {
      const agentJob = async (args: string[]) => {
        const result = await load(await sandbox('healthy'), args);
        return objects(manifest(result, 'agent')).find((o) => o.kind === 'ScaledJob');
      };
      const [warm, cold] = await Promise.all([agentJob(['--agent-warm=2']), agentJob([])]);
      expect(warm.spec.minReplicaCount).toBe(2);
      expect(cold.spec.minReplicaCount).toBe(0);
      const idleTimeout = (job: typeof warm) =>
        job.spec.jobTargetRef.template.spec.containers[0].env.find(
          (e: { name: string }) => e.name === 'AGENT_IDLE_TIMEOUT',
        ).value;
      expect([idleTimeout(warm), idleTimeout(cold)]).toEqual(['3600s', '30s']);
    });

    it('--agent-warm refuses what is not a count', async () => {
      const result = await tiltfileResult(await sandbox('healthy'), ['--agent-warm=-1']);
      expect(result.code).toBe(5);
      expect(result.stderr).toContain("--agent-warm must be a whole number, not '-1'");
    });

    it('--agent-max refuses what is not a count', async () => {
      const result = await tiltfileResult(await sandbox('healthy'), ['--agent-max=lots']);
      expect(result.code).toBe(5);
      expect(result.stderr).toContain("--agent-max must be a whole number of at least 1, not 'lots'");
    });

    it('without --gpu there is nothing of the GPU: no agent-gpu, no device plugin, no RuntimeClass', async () => {
      const result = await load(await sandbox('healthy'));
      const names = result.Manifests.map((m) => m.Name);
      expect(names).not.toContain('agent-gpu');
      expect(names).not.toContain('nvidia-device-plugin');
      expect(result.Manifests.map((m) => m.DeployTarget.yaml ?? '').join('\n')).not.toMatch(
        /nvidia|raibid:jobs:gpu/,
      );
    });

    it('--gpu adds agent-gpu (application) and nvidia-device-plugin (infrastructure); --gpu-jobs sets N', async () => {
      const result = await load(await sandbox('healthy'), ['--gpu', '--gpu-jobs=2']);
      const plugin = manifest(result, 'nvidia-device-plugin');
      expect(Object.keys(plugin.Labels ?? {})).toEqual(['infrastructure']);
      expect(kindsAndNames(plugin).sort()).toEqual(['HelmChart/nvidia-device-plugin', 'RuntimeClass/nvidia']);
      const gpu = manifest(result, 'agent-gpu');
      expect(Object.keys(gpu.Labels ?? {})).toEqual(['application']);
      expect(gpu.ResourceDependencies).toEqual(['server', 'keda', 'nvidia-device-plugin']);
      const scaledJob = objects(gpu).find((o) => o.kind === 'ScaledJob');
      expect(scaledJob.metadata.name).toBe('raibid-agent-gpu');
      expect(scaledJob.spec.maxReplicaCount).toBe(2);
      expect(scaledJob.spec.triggers[0].metadata.stream).toBe('raibid:jobs:gpu');
      // The agent image Tilt builds goes into the GPU ScaledJob too.
      expect(gpu.DeployTarget.imageMaps).toEqual(['raibid-agent']);
      expect(scaledJob.spec.jobTargetRef.template.spec.containers[0].image).toBe('raibid-agent');
      // The CPU pool is untouched.
      expect(
        objects(manifest(result, 'agent')).find((o) => o.kind === 'ScaledJob').spec.maxReplicaCount,
      ).toBe(8);
    });

    it('--gpu-jobs refuses what is not a count, and needs --gpu', async () => {
      const notCount = await tiltfileResult(await sandbox('healthy'), ['--gpu', '--gpu-jobs=0']);
      expect(notCount.code).toBe(5);
      expect(notCount.stderr).toContain("--gpu-jobs must be a whole number of at least 1, not '0'");
      const noGpu = await tiltfileResult(await sandbox('healthy'), ['--gpu-jobs=2']);
      expect(noGpu.code).toBe(5);
      expect(noGpu.stderr).toContain('--gpu-jobs needs --gpu: tilt up -- --gpu --gpu-jobs=2');
    });

    it('pushes to --registry (default localhost:5000) when the cluster advertises no registry', async () => {
      const result = await load(await sandbox('no-registry-configmap'), [`--registry=${registryHost}`]);
      expect(result.DefaultRegistry?.host).toBe(registryHost);
    });
  });

  // Tilt exits 5 when the Tiltfile fails to load, with the fail() message on stderr.
  describe('stops with what to do when', () => {
    async function failure(box: Sandbox, args: string[] = []): Promise<string> {
      const result = await tiltfileResult(box, args);
      expect(result.code).toBe(5);
      return result.stderr;
    }

    it('k3s is stopped', async () => {
      const stderr = await failure(await sandbox('stopped'));
      expect(stderr).toContain(
        "The Kubernetes API of context 'default' does not answer. Start k3s: sudo systemctl start k3s",
      );
      expect(stderr).toContain('infra/k3s/check.sh');
    });

    it('no node is Ready', async () => {
      expect(await failure(await sandbox('no-node-ready'))).toContain('No Kubernetes node is Ready');
    });

    it('the registry does not answer', async () => {
      const port = await closedPort();
      const stderr = await failure(await sandbox('no-registry-configmap'), [`--registry=127.0.0.1:${port}`]);
      expect(stderr).toContain(`The image registry 127.0.0.1:${port} does not answer`);
      expect(stderr).toContain('docker start raibid-registry');
    });

    it('the kube context is not the local k3s', async () => {
      const stderr = await failure(await sandbox('healthy', { context: 'production' }));
      expect(stderr).toContain("The current kube context is 'production', not raibid-ci's k3s");
      expect(stderr).toContain('kubectl config use-context default');
    });

    it('there is no kubeconfig', async () => {
      const stderr = await failure(await sandbox('healthy', { context: '' }));
      expect(stderr).toContain('No Kubernetes context. Run sudo infra/k3s/install.sh');
    });

    it('tk is not installed', async () => {
      const stderr = await failure(await sandbox('healthy', { withTk: false }));
      expect(stderr).toContain('tk is not on PATH. Install Tanka');
      expect(stderr).toContain('go install github.com/grafana/tanka/cmd/tk@v0.38.0');
    });
  });

  it('allows the k3s contexts before its first local() (Tilt refuses local() in an untrusted context)', async () => {
    const result = await run(
      tools.path.tilt!,
      ['alpha', 'tiltfile-result', '--builtin-timings', '-f', path.join(REPO_ROOT, 'Tiltfile')],
      (await sandbox('healthy')).env,
    );
    expect(result.code, result.stderr).toBe(0);
    const calls = result.stdout.split('\n').filter((line) => line.startsWith('- '));
    expect(calls[0]).toMatch(/^- allow_k8s_contexts\(\["default", "k3s", "k3d-raibid-ci"\]\)/);
    expect(calls.some((line) => line.startsWith('- local('))).toBe(true);
  });

  it('tilt down skips the checks, and leaves KEDA installed (it deletes the ScaledJob)', async () => {
    // The API server of this kubeconfig refuses connections: the load must still succeed and
    // Tilt fail only when it deletes.
    const box = await sandbox('stopped', { server: `https://127.0.0.1:${await closedPort()}` });
    const result = await run(tools.path.tilt!, ['down', '-f', path.join(REPO_ROOT, 'Tiltfile')], box.env);
    const output = result.stdout + result.stderr;
    expect(output).toContain('Successfully loaded Tiltfile');
    expect(output).not.toContain('does not answer');
    const deleting = output.slice(output.indexOf('Deleting kubernetes objects:'));
    expect(deleting).toContain('ScaledJob/raibid-agent');
    expect(deleting).toContain('HelmChart/flux');
    expect(deleting).not.toContain('HelmChart/keda');
    expect(deleting).toContain('connection refused');
  });

  it('passes buildifier lint and format checks', async () => {
    const result = await run(
      tools.path.buildifier!,
      ['--mode=check', '--lint=warn', '--type=default', 'Tiltfile'],
      process.env,
    );
    expect(result.stderr + result.stdout).toBe('');
    expect(result.code).toBe(0);
  });
});
