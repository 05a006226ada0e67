import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../../packages/common/test/support/ports.js';
import { type Started, startProcess, stopProcess, waitUntilReady } from './command.js';

/** A real kube-apiserver (with its own etcd) on 127.0.0.1, for one test file. */
export interface TestApiServer {
  /** https://127.0.0.1:<port> */
  server: string;
  /** Bearer token of `admin` (group system:masters) from the static token file. */
  token: string;
  /** PEM file the serving certificate verifies against (the apiserver's self-signed cert + CA). */
  caFile: string;
  /** A kubeconfig file (context `test`, namespace `default`) for kubectl or @kubernetes/client-node. */
  kubeconfig: string;
  /** One HTTP request as admin, or with `token` as someone else; the body is JSON in and out. */
  request(method: string, urlPath: string, body?: unknown, token?: string): Promise<ApiResponse>;
  /** Stops kube-apiserver and etcd (by PID) and deletes their data. */
  stop(): Promise<void>;
}

export interface ApiResponse {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: a Kubernetes API body of any kind; tests narrow it.
  body: any;
}

export interface ApiServerOptions {
  /** Path of the kube-apiserver binary (needTools('kube-apiserver')). */
  kubeApiserver: string;
  /** Path of etcd (Debian's etcd-server). */
  etcd: string;
}

function httpOk(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    http
      .get(url, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      })
      .on('error', () => resolve(false));
  });
}

/**
 * Starts Debian's etcd and the real kube-apiserver on 127.0.0.1 (free ports, own temp dir):
 * static token auth (`admin` in system:masters), RBAC authorization, a service-account key made
 * here, and a self-signed serving certificate in its own cert dir. No controller-manager or
 * kubelet runs, so nothing is scheduled: objects are stored (or dry-run) and validated for real.
 */
export async function startApiServer(options: ApiServerOptions): Promise<TestApiServer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'raibid-apiserver-'));
  const [etcdPort, peerPort, securePort] = [await freePort(), await freePort(), await freePort()];
  const etcdUrl = `http://127.0.0.1:${etcdPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;

  const etcd = startProcess(
    options.etcd,
    [
      '--name=test',
      `--data-dir=${path.join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=test=${peerUrl}`,
      '--log-level=warn',
    ],
    // etcd 3.4 refuses to start on arm64 unless told the architecture is accepted.
    { env: { ...process.env, ...(process.arch === 'arm64' ? { ETCD_UNSUPPORTED_ARCH: 'arm64' } : {}) } },
  );
  let apiserver: Started | undefined;
  const stop = async () => {
    if (apiserver) await stopProcess(apiserver);
    await stopProcess(etcd);
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await waitUntilReady('etcd', etcd, () => httpOk(`${etcdUrl}/health`));

    const token = randomBytes(24).toString('hex');
    await writeFile(path.join(dir, 'tokens.csv'), `${token},admin,admin-uid,"system:masters"\n`, {
      mode: 0o600,
    });
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await writeFile(path.join(dir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }), {
      mode: 0o600,
    });
    await writeFile(path.join(dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));

    const certDir = path.join(dir, 'certs');
    apiserver = startProcess(options.kubeApiserver, [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${securePort}`,
      `--cert-dir=${certDir}`,
      `--token-auth-file=${path.join(dir, 'tokens.csv')}`,
      `--service-account-key-file=${path.join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${path.join(dir, 'sa.key')}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      '--authorization-mode=RBAC',
      '--profiling=false',
    ]);
    const server = `https://127.0.0.1:${securePort}`;
    // The self-signed certificate appears in certDir before the port serves; it holds cert + CA.
    const caFile = path.join(certDir, 'apiserver.crt');
    const started = apiserver;
    let ca: Buffer | undefined;
    const request = (method: string, urlPath: string, body?: unknown, as = token) =>
      apiRequest(server, ca ?? Buffer.alloc(0), as, method, urlPath, body);
    await waitUntilReady('kube-apiserver', started, async () => {
      ca = await readFile(caFile);
      return (await request('GET', '/readyz')).status === 200;
    });

    const kubeconfig = path.join(dir, 'kubeconfig');
    await writeFile(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'test', cluster: { server, 'certificate-authority': caFile } }],
        users: [{ name: 'admin', user: { token } }],
        contexts: [{ name: 'test', context: { cluster: 'test', user: 'admin', namespace: 'default' } }],
        'current-context': 'test',
      }),
      { mode: 0o600 },
    );
    return { server, token, caFile, kubeconfig, request, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

function apiRequest(
  server: string,
  ca: Buffer,
  token: string,
  method: string,
  urlPath: string,
  body: unknown,
): Promise<ApiResponse> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      new URL(urlPath, server),
      {
        method,
        ca,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(payload === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // /readyz and /healthz answer plain text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
