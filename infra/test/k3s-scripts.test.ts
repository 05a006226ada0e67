import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigMap } from 'kubernetes-models/v1';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { freshMachine, type MachineState, Sandbox } from './support/k3s-sandbox.js';
import { needTools, REPO_ROOT } from './support/tools.js';

// No k3s runs here: install.sh, check.sh and secrets.sh run against stand-ins of kubectl, docker,
// k3s, systemctl, curl, ss, sysctl, df, id and uname (support/k3s-standins.mjs) that answer like a
// healthy or a broken machine. What is real: bash, the scripts, the files they write, and (for the
// kubeconfig merge) kubectl itself.

const K3S_VERSION = 'v1.34.4+k3s1';

function shellScripts(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(path.join(REPO_ROOT, dir), { withFileTypes: true })) {
    const relative = path.join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== 'node_modules') found.push(...shellScripts(relative));
    else if (entry.name.endsWith('.sh')) found.push(relative);
  }
  return found;
}

const shellcheck = needTools('shellcheck');

describe.skipIf(shellcheck.skip)('shellcheck', () => {
  it('passes every *.sh under infra/ and scripts/', () => {
    const scripts = [...shellScripts('infra'), ...shellScripts('scripts')];
    expect(scripts).toEqual(
      expect.arrayContaining(['infra/k3s/install.sh', 'infra/k3s/check.sh', 'scripts/tools.sh']),
    );
    const result = spawnSync(shellcheck.path.shellcheck!, ['-x', ...scripts], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});

describe('install.sh --print-config', () => {
  const result = spawnSync('bash', [path.join(REPO_ROOT, 'infra/k3s/install.sh'), '--print-config'], {
    encoding: 'utf8',
  });
  const documents = parseAllDocuments(result.stdout);

  it('prints config.yaml, registries.yaml and the ConfigMap as YAML', () => {
    expect(result.status).toBe(0);
    expect(documents.map((d) => d.errors)).toEqual([[], [], []]);
    expect(result.stdout).toMatch(/^# \/etc\/rancher\/k3s\/config\.yaml$/m);
    expect(result.stdout).toMatch(/^# \/etc\/rancher\/k3s\/registries\.yaml$/m);
    expect(result.stdout).toMatch(/^# \/var\/lib\/rancher\/k3s\/server\/manifests\/.+\.yaml$/m);
  });

  it('configures k3s without traefik and with a readable kubeconfig', () => {
    expect(documents[0]!.toJS()).toEqual({ 'write-kubeconfig-mode': '0644', disable: ['traefik'] });
  });

  it('mirrors localhost:5000 over http', () => {
    expect(documents[1]!.toJS()).toEqual({
      mirrors: { 'localhost:5000': { endpoint: ['http://localhost:5000'] } },
    });
  });

  it('advertises the registry with the KEP-1755 ConfigMap', () => {
    const configMap = documents[2]!.toJS();
    new ConfigMap(configMap).validate();
    expect(configMap).toMatchObject({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'local-registry-hosting', namespace: 'kube-public' },
    });
    expect(Object.keys(configMap.data)).toEqual(['localRegistryHosting.v1']);
    const hosting = parse(configMap.data['localRegistryHosting.v1']);
    expect(hosting).toMatchObject({ host: 'localhost:5000', hostFromContainerRuntime: 'localhost:5000' });
    expect(hosting.help).toMatch(/^https:\/\/\S+$/);
  });
});

describe('install.sh prerequisites', () => {
  const sandboxes: Sandbox[] = [];
  const sandbox = (state: MachineState, options?: ConstructorParameters<typeof Sandbox>[1]) => {
    const made = new Sandbox(state, options);
    sandboxes.push(made);
    return made;
  };
  afterEach(() => {
    for (const made of sandboxes.splice(0)) made.remove();
  });

  it('names each missing prerequisite with its fix, and changes nothing', () => {
    const machine = freshMachine();
    machine.uid = 1000;
    machine.dockerDaemon = false;
    machine.listening = [6443, 5000];
    machine.sysctl['fs.inotify.max_user_watches'] = 8192;
    const box = sandbox(machine, { without: ['curl'] });
    const run = box.run('install.sh');
    expect(run.code).toBe(1);
    const lines = run.stderr.trim().split('\n');
    expect(lines).toEqual([
      expect.stringMatching(/^missing: root: .*; run: sudo .*install\.sh $/),
      'missing: curl (downloads the k3s installer): sudo apt-get install curl',
      'missing: a running Docker daemon (docker info fails): sudo systemctl enable --now docker',
      expect.stringMatching(/^missing: a free port 6443 .* sudo ss -ltnp 'sport = :6443' and stop it$/),
      expect.stringMatching(
        /^missing: a free port 5000 .* sudo ss -ltnp 'sport = :5000' \(or docker ps\) and stop it$/,
      ),
      expect.stringMatching(
        /^warning: inotify limits are low .*max_user_watches=8192.*: run again with --raise-inotify$/,
      ),
      'error: 5 prerequisite(s) missing; fix them and run infra/k3s/install.sh again (nothing was changed)',
    ]);
    expect(box.writtenFiles()).toEqual([]);
    expect(
      run.calls.filter((c) => c.command === 'docker' && !['info', 'inspect'].includes(c.args[0]!)),
    ).toEqual([]);
  });

  it('explains a missing Docker', () => {
    const run = sandbox(freshMachine(), { without: ['docker'] }).run('install.sh', ['--dry-run']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      "missing: Docker (builds the images, runs the local registry): sudo apt-get install docker.io, or Docker's docker-ce\n",
    );
  });

  it('refuses a machine that is neither arm64 nor amd64', () => {
    const machine = freshMachine();
    machine.machine = 'riscv64';
    const run = sandbox(machine).run('install.sh', ['--dry-run']);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      'error: k3s for raibid-ci is set up for arm64 (DGX Spark) and amd64 only; this machine is riscv64\n',
    );
  });

  it('accepts ports 6443 and 5000 held by its own k3s and registry', () => {
    const machine = freshMachine();
    machine.listening = [6443, 5000];
    machine.k3s = { version: K3S_VERSION, active: true };
    machine.registry = { running: true, image: 'registry:2.8.3', repositories: [] };
    const run = sandbox(machine).run('install.sh', ['--dry-run']);
    expect(run.stderr).not.toContain('missing:');
  });

  it('GPU: says there is none when nvidia-smi is missing, and requires driver and toolkit with --gpu', () => {
    const none = sandbox(freshMachine()).run('install.sh', ['--dry-run']);
    expect(none.code).toBe(0);
    expect(none.stdout).toContain('ok: no NVIDIA GPU here (nvidia-smi not found): GPU jobs stay off\n');
    const wanted = sandbox(freshMachine()).run('install.sh', ['--dry-run', '--gpu']);
    expect(wanted.code).toBe(1);
    expect(wanted.stderr).toContain(
      'missing: an NVIDIA driver (nvidia-smi not found) for --gpu: install the GPU driver (DGX OS has it), or run without --gpu\n',
    );
  });

  it('GPU: names the missing NVIDIA container toolkit (a warning, or missing with --gpu)', () => {
    const box = sandbox(freshMachine());
    box.placeScript('nvidia-smi', 'echo "NVIDIA GB10"');
    const toolkit =
      "the NVIDIA container toolkit (nvidia-container-runtime not found), needed for GPU jobs on the NVIDIA GB10: sudo apt-get install nvidia-container-toolkit (from NVIDIA's apt repository; docs/gpu.md), then run install.sh again";
    const warned = box.run('install.sh', ['--dry-run']);
    expect(warned.code).toBe(0);
    expect(warned.stderr).toContain(`warning: missing ${toolkit}\n`);
    const refused = box.run('install.sh', ['--dry-run', '--gpu']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`missing: ${toolkit}\n`);
    expect(refused.stderr).toMatch(/error: 1 prerequisite\(s\) missing/);

    box.placeScript('nvidia-container-runtime', 'exit 0');
    box.placeScript('nvidia-ctk', 'exit 0');
    const found = box.run('install.sh', ['--dry-run', '--gpu']);
    expect(found.code).toBe(0);
    expect(found.stderr).toBe('');
    expect(found.stdout).toContain(
      `ok: NVIDIA GB10 with the NVIDIA container toolkit (${box.bin}/nvidia-container-runtime); k3s adds the nvidia runtime when it starts\n`,
    );
    expect(found.stdout).toContain('would: restart k3s so it finds the NVIDIA container runtime\n');
  });

  it('--dry-run says what it would do and changes nothing', () => {
    const box = sandbox(freshMachine());
    const run = box.run('install.sh', ['--dry-run']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('would: run registry:2.8.3 as container raibid-registry on 127.0.0.1:5000');
    expect(run.stdout).toContain(
      `would: install k3s ${K3S_VERSION} with the official installer (https://get.k3s.io)`,
    );
    expect(run.stdout).toContain(`would: write ${box.root}/etc/rancher/k3s/registries.yaml`);
    expect(run.stdout).toMatch(/dry run: \d+ change\(s\) would be made; nothing was changed\n$/);
    expect(box.writtenFiles()).toEqual([]);
    expect(box.state).toEqual(freshMachine());
  });
});

const kubectl = needTools('kubectl');

describe.skipIf(kubectl.skip)(
  'install.sh on a fresh machine (stand-ins; the real kubectl merges the kubeconfig)',
  () => {
    let box: Sandbox;
    beforeAll(() => {
      box = new Sandbox(freshMachine(), { realKubectl: kubectl.path.kubectl! });
    });
    afterAll(() => box.remove());

    it('installs, and a second run changes nothing and says so', () => {
      // The user already has a kubeconfig for another cluster: it must survive the merge.
      mkdirSync(path.join(box.home, '.kube'));
      const work = {
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'work', cluster: { server: 'https://work.example:6443' } }],
        contexts: [{ name: 'work', context: { cluster: 'work', user: 'me' } }],
        'current-context': 'work',
        users: [{ name: 'me', user: { token: 'work-token' } }],
      };
      writeFileSync(path.join(box.home, '.kube', 'config'), JSON.stringify(work));
      const machine = box.state;
      machine.cluster.nodeReady = true;
      box.state = machine;

      const first = box.run('install.sh');
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      const installer = first.calls.find((c) => c.command === 'k3s-installer');
      expect(installer).toBeDefined();
      expect(first.calls.find((c) => c.command === 'docker' && c.args[0] === 'run')?.args).toEqual([
        'run',
        '-d',
        '--name',
        'raibid-registry',
        '--restart=always',
        '-p',
        '127.0.0.1:5000:5000',
        '-v',
        'raibid-registry-data:/var/lib/registry',
        'registry:2.8.3',
      ]);
      expect(box.state.k3s).toEqual({ version: K3S_VERSION, active: true });
      expect(first.stdout).toContain(`changed: install k3s ${K3S_VERSION}`);
      expect(first.stdout).toContain(
        "note: kubectl's current context is now 'default' (k3s); 'kubectl config use-context work' goes back",
      );
      expect(first.stdout).toMatch(/created raibid-system\/raibid-secrets/);
      expect(first.stdout).toMatch(/done: \d+ change\(s\)\. Next: infra\/k3s\/check\.sh, then tilt up\n$/);

      const printed = spawnSync('bash', [path.join(REPO_ROOT, 'infra/k3s/install.sh'), '--print-config'], {
        encoding: 'utf8',
      }).stdout;
      for (const file of [
        '/etc/rancher/k3s/config.yaml',
        '/etc/rancher/k3s/registries.yaml',
        '/var/lib/rancher/k3s/server/manifests/raibid-local-registry-hosting.yaml',
      ]) {
        const written = readFileSync(path.join(box.root, file), 'utf8');
        expect(printed).toContain(`# ${file}\n${written}`);
      }
      const kubeconfig = parse(readFileSync(path.join(box.home, '.kube', 'config'), 'utf8'));
      expect(kubeconfig['current-context']).toBe('default');
      expect(kubeconfig.contexts.map((c: { name: string }) => c.name).sort()).toEqual(['default', 'work']);
      expect(
        readdirSync(path.join(box.home, '.kube')).filter((f) => f.startsWith('config.bak-raibid-')),
      ).toHaveLength(1);

      const second = box.run('install.sh');
      expect(second.code).toBe(0);
      expect(second.stderr).toBe('');
      expect(second.stdout).not.toContain('changed:');
      expect(second.stdout).toContain('kept raibid-system/raibid-secrets as it is');
      expect(second.stdout).toMatch(
        /nothing to change: k3s v1\.34\.4\+k3s1, the registry on localhost:5000 and the kubeconfig were already set up\n$/,
      );
      const mutating = second.calls.filter(
        (c) =>
          c.command === 'k3s-installer' ||
          (c.command === 'docker' && ['run', 'start'].includes(c.args[0]!)) ||
          (c.command === 'systemctl' && c.args[0] === 'restart') ||
          (c.command === 'kubectl' && ['create', 'patch'].includes(c.args.find((a) => !a.startsWith('-'))!)),
      );
      expect(mutating).toEqual([]);
      expect(
        readdirSync(path.join(box.home, '.kube')).filter((f) => f.startsWith('config.bak-raibid-')),
      ).toHaveLength(1);
    });

    it('GPU: restarts k3s when the toolkit came after k3s, and leaves it alone once containerd has the nvidia runtime', () => {
      box.placeScript('nvidia-smi', 'echo "NVIDIA GB10"');
      box.placeScript('nvidia-container-runtime', 'exit 0');
      box.placeScript('nvidia-ctk', 'exit 0');
      const containerd = path.join(box.root, 'var/lib/rancher/k3s/agent/etc/containerd');
      mkdirSync(containerd, { recursive: true });
      // containerd's config as k3s wrote it before the toolkit was there.
      writeFileSync(
        path.join(containerd, 'config.toml'),
        "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.'runc']\n",
      );
      const first = box.run('install.sh', ['--gpu']);
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout).toContain(
        'changed: restarted k3s so it finds the NVIDIA container runtime (k3s looks for it only at start)\n',
      );
      expect(first.calls.filter((c) => c.command === 'systemctl' && c.args[0] === 'restart')).toHaveLength(1);

      // What k3s writes at its next start when it finds nvidia-container-runtime.
      writeFileSync(
        path.join(containerd, 'config.toml'),
        "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.'nvidia']\n  runtime_type = \"io.containerd.runc.v2\"\n",
      );
      const second = box.run('install.sh', ['--gpu']);
      expect(second.code).toBe(0);
      expect(second.stdout).toContain("ok: k3s's containerd has the nvidia runtime (RuntimeClass nvidia)\n");
      expect(second.stdout).not.toContain('changed:');
      expect(second.calls.filter((c) => c.command === 'systemctl' && c.args[0] === 'restart')).toEqual([]);
    });
  },
);

describe('check.sh', () => {
  const sandboxes: Sandbox[] = [];
  afterEach(() => {
    for (const made of sandboxes.splice(0)) made.remove();
  });

  function healthy(): Sandbox {
    const machine = freshMachine();
    machine.uid = 1000;
    machine.registry = { running: true, image: 'registry:2.8.3', repositories: [] };
    machine.k3s = { version: K3S_VERSION, active: true };
    machine.cluster = {
      ...machine.cluster,
      up: true,
      nodeReady: true,
      namespaces: [...machine.cluster.namespaces, 'raibid-system'],
      secret: {
        'api-token': 'YQ==',
        'webhook-secret': 'Yg==',
        'gitea-admin-password': 'Yw==',
        'gitea-token': '',
      },
      kedaEstablished: true,
      kedaHelmChart: true,
    };
    const box = new Sandbox(machine);
    sandboxes.push(box);
    const printed = spawnSync('bash', [path.join(REPO_ROOT, 'infra/k3s/install.sh'), '--print-config'], {
      encoding: 'utf8',
    }).stdout;
    const registries = printed.split('---\n')[1]!;
    mkdirSync(path.join(box.root, 'etc/rancher/k3s'), { recursive: true });
    writeFileSync(path.join(box.root, 'etc/rancher/k3s/registries.yaml'), registries);
    // What k3s generates from registries.yaml at start.
    const certs = path.join(box.root, 'var/lib/rancher/k3s/agent/etc/containerd/certs.d/localhost:5000');
    mkdirSync(certs, { recursive: true });
    writeFileSync(
      path.join(certs, 'hosts.toml'),
      '# File generated by k3s. DO NOT EDIT.\n[host."http://localhost:5000"]\n  capabilities = ["pull", "resolve"]\n',
    );
    return box;
  }

  it('passes on a healthy machine', () => {
    const run = healthy().run('check.sh');
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain('ok    the registry answers on http://localhost:5000/v2/');
    expect(run.stdout).toContain('ok    k3s pulls localhost:5000 over http');
    expect(run.stdout).toContain(
      'skip  a pull by the node: the registry is empty (tilt up pushes raibid-server and raibid-agent)',
    );
    expect(run.stdout).toContain('ok    the node is Ready');
    expect(run.stdout).toContain("ok    KEDA's CRD scaledjobs.keda.sh is Established");
    expect(run.stdout).toContain(
      'ok    the Secret raibid-system/raibid-secrets has its keys (gitea-token still empty: raibid seed-gitea fills it)',
    );
    expect(run.stdout).toContain(
      'skip  GPU: off (no HelmChart nvidia-device-plugin; tilt up -- --gpu turns it on, docs/gpu.md)',
    );
    expect(run.stdout).toMatch(/check: 9 ok, 0 failed, 2 skipped\n$/);
    expect(run.code).toBe(0);
  });

  it('GPU on: checks that the node advertises nvidia.com/gpu, and says where to look when not', () => {
    const box = healthy();
    const machine = box.state;
    machine.cluster.gpu = { devicePlugin: true, allocatable: 4 };
    box.state = machine;
    const on = box.run('check.sh');
    expect(on.stdout).toContain(
      'ok    nvidia.com/gpu is advertised: spark (4) (each share runs one GPU job)',
    );
    expect(on.code).toBe(0);

    machine.cluster.gpu = { devicePlugin: true, allocatable: 0 };
    box.state = machine;
    const off = box.run('check.sh');
    expect(off.code).toBe(1);
    expect(off.stdout).toContain(
      'FAIL  no node advertises nvidia.com/gpu though HelmChart nvidia-device-plugin exists: sudo infra/k3s/install.sh --gpu says what the node lacks; kubectl -n nvidia-device-plugin logs daemonset/nvidia-device-plugin shows why',
    );
  });

  it('says how to fix each failure when k3s and the registry are stopped', () => {
    const box = healthy();
    const machine = box.state;
    machine.registry!.running = false;
    machine.k3s!.active = false;
    machine.cluster.up = false;
    machine.freeKiB = 3 * 1024 * 1024;
    machine.sysctl['fs.inotify.max_user_instances'] = 128;
    box.state = machine;
    const run = box.run('check.sh');
    expect(run.code).toBe(1);
    const failures = run.stdout.split('\n').filter((line) => line.startsWith('FAIL'));
    expect(failures).toEqual([
      'FAIL  the registry does not answer on http://localhost:5000/v2/: docker start raibid-registry (or sudo infra/k3s/install.sh); log: docker logs raibid-registry',
      'FAIL  kubectl does not reach the cluster: sudo systemctl start k3s; why: sudo journalctl -u k3s -e',
      expect.stringMatching(
        /^FAIL {2}only 3 GiB free for .*: docker system prune; sudo k3s crictl rmi --prune$/,
      ),
      expect.stringMatching(
        /^FAIL {2}inotify limits are low .*max_user_instances=128.*: sudo infra\/k3s\/install\.sh --raise-inotify$/,
      ),
    ]);
    expect(run.stdout).toContain('skip  node, KEDA, GPU and Secret checks: they need the cluster');
    expect(run.stdout).toMatch(/check: 2 ok, 4 failed, 2 skipped\n$/);
  });

  it('names the fixes for a stale kubeconfig, a missing Secret, an http-less registries.yaml and a failing KEDA', () => {
    const box = healthy();
    writeFileSync(path.join(box.root, 'etc/rancher/k3s/registries.yaml'), 'mirrors: {}\n');
    const machine = box.state;
    machine.cluster.secret = null;
    machine.cluster.kedaEstablished = false;
    box.state = machine;
    const run = box.run('check.sh');
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(
      `FAIL  ${box.root}/etc/rancher/k3s/registries.yaml has no http://localhost:5000 endpoint (k3s would use https and fail): sudo infra/k3s/install.sh`,
    );
    expect(run.stdout).toContain(
      'FAIL  the Secret raibid-system/raibid-secrets is missing: infra/k3s/secrets.sh',
    );
    expect(run.stdout).toContain(
      "FAIL  KEDA's CRD scaledjobs.keda.sh is not Established though HelmChart keda exists: kubectl -n kube-system logs job/helm-install-keda",
    );

    machine.cluster.unauthorized = true;
    box.state = machine;
    expect(box.run('check.sh').stdout).toContain(
      'FAIL  kubectl is refused by the cluster (stale ~/.kube/config from an older k3s): sudo infra/k3s/install.sh copies the current one',
    );
  });
});

describe('secrets.sh', () => {
  const sandboxes: Sandbox[] = [];
  afterEach(() => {
    for (const made of sandboxes.splice(0)) made.remove();
  });
  function cluster(): Sandbox {
    const machine = freshMachine();
    machine.uid = 1000;
    machine.cluster.up = true;
    machine.cluster.nodeReady = true;
    const box = new Sandbox(machine);
    sandboxes.push(box);
    return box;
  }
  const decoded = (box: Sandbox) =>
    Object.fromEntries(
      Object.entries(box.state.cluster.secret ?? {}).map(([k, v]) => [
        k,
        Buffer.from(v, 'base64').toString(),
      ]),
    );
  // Every place a value could leak: the script's output and every stand-in call's arguments.
  function expectNoValueShown(
    run: { stdout: string; stderr: string; calls: { args: string[] }[] },
    values: string[],
  ) {
    const shown = [run.stdout, run.stderr, ...run.calls.flatMap((c) => c.args)].join('\n');
    for (const value of values) expect(shown).not.toContain(value);
  }

  it('creates the namespace and the Secret once, with random values it never shows', () => {
    const box = cluster();
    const first = box.run('secrets.sh');
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toBe(
      'created namespace raibid-system\n' +
        'created raibid-system/raibid-secrets with new random api-token webhook-secret gitea-admin-password and an empty gitea-token (values not shown)\n',
    );
    const values = decoded(box);
    expect(Object.keys(values).sort()).toEqual([
      'api-token',
      'gitea-admin-password',
      'gitea-token',
      'webhook-secret',
    ]);
    expect(values['gitea-token']).toBe('');
    const generated = [values['api-token']!, values['webhook-secret']!, values['gitea-admin-password']!];
    for (const value of generated) expect(value).toMatch(/^[0-9a-f]{64}$/);
    expect(new Set(generated).size).toBe(3);
    expectNoValueShown(first, generated);

    const second = box.run('secrets.sh');
    expect(second.code).toBe(0);
    expect(second.stdout).toBe(
      'kept raibid-system/raibid-secrets as it is (all keys present; values not shown)\n',
    );
    expect(decoded(box)).toEqual(values);
    expect(second.calls.filter((c) => c.args.includes('create') || c.args.includes('patch'))).toEqual([]);
  });

  it('--rotate gives one key a new value and says what to restart', () => {
    const box = cluster();
    box.run('secrets.sh');
    const before = decoded(box);
    const run = box.run('secrets.sh', ['--rotate', 'api-token']);
    expect(run.code).toBe(0);
    const after = decoded(box);
    expect(after['api-token']).toMatch(/^[0-9a-f]{64}$/);
    expect(after['api-token']).not.toBe(before['api-token']);
    expect({ ...after, 'api-token': '' }).toEqual({ ...before, 'api-token': '' });
    expect(run.stdout).toBe(
      'rotated api-token in raibid-system/raibid-secrets (the value is not shown)\n' +
        'restart the server: kubectl -n raibid-system rollout restart deployment/raibid-server; CLI users need the new token (RAIBID_API_TOKEN)\n',
    );
    expectNoValueShown(run, [after['api-token']!, before['api-token']!]);

    const token = box.run('secrets.sh', ['--rotate', 'gitea-token']);
    expect(token.code).toBe(1);
    expect(token.stderr).toBe(
      'error: gitea-token is made by Gitea, not at random: run raibid seed-gitea (it creates a new token and writes it here)\n',
    );
  });

  it('keeps the values of an older Secret and adds only the keys it lacks', () => {
    const box = cluster();
    const machine = box.state;
    machine.cluster.namespaces.push('raibid-system');
    machine.cluster.secret = { 'api-token': Buffer.from('kept-token').toString('base64') };
    box.state = machine;
    const run = box.run('secrets.sh');
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(
      'kept the values in raibid-system/raibid-secrets and added the missing webhook-secret gitea-admin-password gitea-token (values not shown)\n',
    );
    const values = decoded(box);
    expect(values['api-token']).toBe('kept-token');
    expect(values['webhook-secret']).toMatch(/^[0-9a-f]{64}$/);
    expect(values['gitea-token']).toBe('');
  });

  it('says what to do when the cluster does not answer', () => {
    const box = cluster();
    const machine = box.state;
    machine.cluster.up = false;
    box.state = machine;
    const run = box.run('secrets.sh');
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      'error: the cluster does not answer (kubectl get --raw=/readyz failed): run infra/k3s/check.sh\n',
    );
    expect(existsSync(path.join(box.root, 'etc'))).toBe(false);
  });
});

describe('uninstall.sh', () => {
  const sandboxes: Sandbox[] = [];
  afterEach(() => {
    for (const made of sandboxes.splice(0)) made.remove();
  });
  function installed(): Sandbox {
    const machine = freshMachine();
    machine.registry = { running: true, image: 'registry:2.8.3', repositories: ['raibid-agent'] };
    machine.volume = true;
    machine.k3s = { version: K3S_VERSION, active: true };
    machine.cluster = {
      ...machine.cluster,
      up: true,
      nodeReady: true,
      kedaEstablished: true,
      kedaHelmChart: true,
    };
    const box = new Sandbox(machine);
    sandboxes.push(box);
    box.placeStandin('/usr/local/bin/k3s-uninstall.sh', 'k3s-uninstall');
    return box;
  }

  it('deletes the ScaledJobs before the KEDA HelmChart, then k3s and the registry container; keeps the images', () => {
    const box = installed();
    const run = box.run('uninstall.sh', ['--yes']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const steps = run.calls
      .filter((c) => c.args.includes('delete') || c.command === 'k3s-uninstall' || c.args[0] === 'rm')
      .map((c) => `${c.command} ${c.args.join(' ')}`);
    expect(steps).toEqual([
      'kubectl delete scaledjobs.keda.sh --all --all-namespaces --timeout=60s',
      'kubectl -n kube-system delete helmchart keda flux --ignore-not-found --timeout=120s',
      'k3s-uninstall ',
      'docker rm -f raibid-registry',
    ]);
    expect(run.stdout).toContain(
      "kept the registry's images in the Docker volume raibid-registry-data (--purge deletes them)",
    );
    expect(box.state.volume).toBe(true);
  });

  it('--purge also deletes the images; a second run has nothing to remove', () => {
    const box = installed();
    expect(box.run('uninstall.sh', ['--yes', '--purge']).code).toBe(0);
    expect(box.state.volume).toBe(false);
    const again = box.run('uninstall.sh', ['--yes', '--purge']);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^nothing to remove: /);
  });

  it('does not remove anything without --yes when it cannot ask', () => {
    const box = installed();
    const run = box.run('uninstall.sh');
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      'error: not a terminal, so it cannot ask: run again with --yes to remove k3s and the registry\n',
    );
    expect(run.calls.filter((c) => c.args.includes('delete') || c.command === 'k3s-uninstall')).toEqual([]);
  });
});
