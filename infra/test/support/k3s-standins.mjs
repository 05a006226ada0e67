// Stand-ins for the commands infra/k3s/*.sh call on a k3s machine (kubectl, docker, k3s, systemctl,
// curl, ss, sysctl, df, id, uname), for tests on a machine without k3s. Each answers from a JSON
// state file ($STANDIN_STATE) the test writes, the way the real command answers on a healthy or a
// broken machine, and appends its arguments and stdin to $STANDIN_LOG (one JSON line per call).
// An unhandled call exits 99, so a script calling something the test did not foresee fails loudly.
// Usage (from a generated wrapper on PATH): node k3s-standins.mjs <command> [args...]
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const YAML = require('yaml');

const [command, ...args] = process.argv.slice(2);
const statePath = process.env.STANDIN_STATE;
const state = JSON.parse(readFileSync(statePath, 'utf8'));
const readsStdin = args.includes('-') || args.some((arg) => arg.includes('/dev/stdin'));
const stdin = readsStdin ? readFileSync(0, 'utf8') : undefined;
appendFileSync(process.env.STANDIN_LOG, `${JSON.stringify({ command, args, stdin })}\n`);

const save = () => writeFileSync(statePath, JSON.stringify(state, null, 2));
const out = (text) => process.stdout.write(text);
function exit(code, error) {
  if (error) process.stderr.write(`${error}\n`);
  process.exit(code);
}
const unhandled = () => exit(99, `stand-in ${command}: unhandled call: ${args.join(' ')}`);
const option = (name) => {
  const inline = args.find((arg) => arg.startsWith(`${name}=`));
  if (inline) return inline.slice(name.length + 1);
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};

const standins = {
  id() {
    const user = state.uid === 0 ? 'root' : 'spark';
    if (args[0] === '-u') return out(`${state.uid}\n`);
    if (args[0] === '-un') return out(`${user}\n`);
    if (args[0] === '-nG') return out(`${user}\n`);
    unhandled();
  },
  uname() {
    if (args[0] === '-m') return out(`${state.machine}\n`);
    unhandled();
  },
  sysctl() {
    if (args[0] === '-n') return out(`${state.sysctl[args[1]]}\n`);
    if (args[0] === '-q' && args[1] === '-p') return;
    unhandled();
  },
  ss() {
    const port = Number(/sport = :(\d+)/.exec(args.join(' '))?.[1]);
    if (state.listening.includes(port)) out(`LISTEN 0 4096 127.0.0.1:${port} 0.0.0.0:*\n`);
  },
  df() {
    out('Filesystem 1024-blocks Used Available Capacity Mounted on\n');
    out(`/dev/standin 999999999 1 ${state.freeKiB} 1% /\n`);
  },
  systemctl() {
    if (args.join(' ') === 'is-active --quiet k3s') return exit(state.k3s?.active ? 0 : 3);
    if (args.join(' ') === 'restart k3s' && state.k3s) {
      state.k3s.active = true;
      state.cluster.up = true;
      return save();
    }
    unhandled();
  },
  k3s() {
    if (args[0] === '--version' && state.k3s)
      return out(`k3s version ${state.k3s.version} (0123abcd)\ngo version go1.24.12\n`);
    unhandled();
  },
  // What the downloaded get.k3s.io script does, as far as the scripts can see it.
  'k3s-installer'() {
    state.k3s = { version: process.env.INSTALL_K3S_VERSION ?? 'stable', active: true };
    state.cluster.up = true;
    // The real installer puts k3s into /usr/local/bin; here PATH is the sandbox's one directory.
    const k3s = path.join(process.env.PATH, 'k3s');
    writeFileSync(
      k3s,
      `#!/bin/sh\nexec "${process.execPath}" "${fileURLToPath(import.meta.url)}" k3s "$@"\n`,
      { mode: 0o755 },
    );
    const kubeconfig = path.join(process.env.RAIBID_INSTALL_ROOT, 'etc/rancher/k3s/k3s.yaml');
    mkdirSync(path.dirname(kubeconfig), { recursive: true });
    writeFileSync(kubeconfig, k3sKubeconfig());
    save();
  },
  // /usr/local/bin/k3s-uninstall.sh, which the real installer writes.
  'k3s-uninstall'() {
    rmSync(path.join(process.env.RAIBID_INSTALL_ROOT, 'usr/local/bin/k3s-uninstall.sh'));
    state.k3s = null;
    state.cluster.up = false;
    save();
  },
  curl() {
    const url = args.find((arg) => /^https?:/.test(arg));
    if (url === 'https://get.k3s.io') {
      const installer = `#!/bin/sh\nexec "${process.execPath}" "${fileURLToPath(import.meta.url)}" k3s-installer\n`;
      return writeFileSync(option('-o'), installer);
    }
    const registry = /^http:\/\/localhost:5000(\/.*)$/.exec(url ?? '');
    if (!registry) return unhandled();
    if (!state.registry?.running) return exit(7);
    if (registry[1] === '/v2/') return out('{}');
    if (registry[1] === '/v2/_catalog')
      return out(JSON.stringify({ repositories: state.registry.repositories }));
    unhandled();
  },
  docker() {
    if (!state.dockerDaemon) {
      return exit(
        1,
        'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?',
      );
    }
    const [verb] = args;
    const name = args.at(-1);
    if (verb === 'info') return out('Server Version: stand-in\n');
    if (verb === 'inspect') {
      if (name !== 'raibid-registry' || !state.registry) return exit(1, `Error: No such object: ${name}`);
      const format = option('-f');
      if (format === '{{.State.Running}}') return out(`${state.registry.running}\n`);
      if (format === '{{.Config.Image}}') return out(`${state.registry.image}\n`);
      return out('[{}]\n');
    }
    if (verb === 'run') {
      state.registry = { running: true, image: name, repositories: [] };
      save();
      return out('0123456789abcdef\n');
    }
    if (verb === 'start' && state.registry) {
      state.registry.running = true;
      return save();
    }
    if (verb === 'volume' && args[1] === 'inspect') return exit(state.volume ? 0 : 1);
    if (verb === 'rm' && args[1] === '-f' && state.registry) {
      state.registry = null;
      return save();
    }
    if (verb === 'volume' && args[1] === 'rm' && state.volume) {
      state.volume = false;
      return save();
    }
    unhandled();
  },
  kubectl() {
    // `kubectl config ...` only reads and merges files: the real kubectl does it.
    if (args[0] === 'config') {
      const real = spawnSync(process.env.REAL_KUBECTL, args, { stdio: 'inherit' });
      return exit(real.status ?? 1);
    }
    const cluster = state.cluster;
    if (cluster.unauthorized) return exit(1, 'error: You must be logged in to the server (Unauthorized)');
    if (!cluster.up) {
      return exit(
        1,
        'The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?',
      );
    }
    const rest = args.filter((_, i) => args[i] !== '-n' && args[i - 1] !== '-n');
    const [verb, kind, name] = rest;
    const ignoreNotFound = args.includes('--ignore-not-found');
    const template = option('-o')?.replace(/^go-template=/, '');
    if (verb === 'get' && kind === '--raw=/readyz') return out('ok');
    if (verb === 'get' && kind === 'nodes') {
      if (template === 'name') return out('node/spark\n');
      if (template?.includes('nvidia')) return out(`spark ${cluster.gpu?.allocatable ?? ''}\n`);
      return out(`spark ${cluster.nodeReady ? 'True' : 'False'}\n`);
    }
    if (verb === 'wait') return exit(cluster.nodeReady ? 0 : 1, cluster.nodeReady ? '' : 'timed out');
    if (verb === 'get' && kind === 'namespace') {
      if (cluster.namespaces.includes(name)) return out(`namespace/${name}\n`);
      return exit(1, `Error from server (NotFound): namespaces "${name}" not found`);
    }
    if (verb === 'create' && kind === 'namespace') {
      cluster.namespaces.push(name);
      save();
      return out(`namespace/${name} created\n`);
    }
    if (verb === 'get' && kind === 'secret' && name === 'raibid-secrets') {
      if (!cluster.secret) {
        return ignoreNotFound
          ? undefined
          : exit(1, 'Error from server (NotFound): secrets "raibid-secrets" not found');
      }
      const keys = Object.keys(cluster.secret).sort();
      if (template?.includes('{{len $value}}'))
        return out(keys.map((k) => `${k}=${cluster.secret[k].length}\n`).join(''));
      if (template) return out(keys.map((k) => `${k}\n`).join(''));
      return out('secret/raibid-secrets\n');
    }
    if (verb === 'create' && kind === '-f' && name === '-') {
      const manifest = YAML.parse(stdin);
      if (manifest.kind !== 'Secret') return unhandled();
      if (cluster.secret)
        return exit(1, 'Error from server (AlreadyExists): secrets "raibid-secrets" already exists');
      cluster.secret = manifest.data ?? {};
      cluster.secretManifest = manifest;
      save();
      return out(`secret/${manifest.metadata.name} created\n`);
    }
    if (verb === 'patch' && kind === 'secret' && cluster.secret && args.includes('--type=merge')) {
      Object.assign(cluster.secret, JSON.parse(stdin).data);
      save();
      return out(`secret/${name} patched\n`);
    }
    if (verb === 'get' && kind === 'crd' && name === 'scaledjobs.keda.sh') {
      if (!cluster.kedaEstablished) return;
      return out(
        template === 'name' ? 'customresourcedefinition.apiextensions.k8s.io/scaledjobs.keda.sh\n' : 'True',
      );
    }
    if (verb === 'delete' && kind === 'scaledjobs.keda.sh')
      return out('scaledjob.keda.sh "raibid-agent" deleted\n');
    if (verb === 'delete' && kind === 'helmchart') {
      cluster.kedaHelmChart = false;
      save();
      return out('helmchart.helm.cattle.io "keda" deleted\n');
    }
    if (verb === 'get' && kind === 'helmchart' && name === 'nvidia-device-plugin') {
      return out(cluster.gpu?.devicePlugin ? 'helmchart.helm.cattle.io/nvidia-device-plugin\n' : '');
    }
    if (verb === 'get' && kind === 'helmchart' && name === 'keda') {
      return out(cluster.kedaHelmChart ? 'helmchart.helm.cattle.io/keda\n' : '');
    }
    unhandled();
  },
};

function k3sKubeconfig() {
  const fake = Buffer.from('stand-in, not a certificate').toString('base64');
  return YAML.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      { name: 'default', cluster: { server: 'https://127.0.0.1:6443', 'certificate-authority-data': fake } },
    ],
    contexts: [{ name: 'default', context: { cluster: 'default', user: 'default' } }],
    'current-context': 'default',
    preferences: {},
    users: [{ name: 'default', user: { 'client-certificate-data': fake, 'client-key-data': fake } }],
  });
}

const standin = standins[command];
if (!standin) exit(99, `no stand-in for ${command}`);
standin();
