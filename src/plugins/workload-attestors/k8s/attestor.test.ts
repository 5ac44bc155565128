import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { ManualClock } from '../../../core/clock.ts';
import { formatSelector } from '../../../core/selector.ts';
import type { Selector } from '../../../core/selector.ts';
import { findContainer, parseCgroupFile } from '../docker/cgroup.ts';
import { createK8sAttestor, k8sConfigSchema } from './attestor.ts';
import { defaultK8sMatchers } from './cgroup-matchers.ts';

const live = () => new AbortController().signal;
const texts = (s: readonly Selector[]) => s.map(formatSelector);

const CTR = '09bc3d7ade839efec32b6bec4ec79d099027a668ddba043083ec21d3c3b8f1e6';
const SIDECAR = '5e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7';
const INIT = 'c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00';
const NEWCTR = 'abad1deaabad1deaabad1deaabad1deaabad1deaabad1deaabad1deaabad1dea';
const POD_UID = 'a2830d0d-b0f0-4ff0-81b5-0ee4e299cf80';
const NEW_POD_UID = '7f4c1e2d-3b5a-4c69-8d7e-0f1a2b3c4d5e';
const TOKEN =
  'eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3QifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6c3BpcmU6YWdlbnQifQ.c2ln';

// A kubelet GET /pods answer: a v1 PodList of the pods bound to this node.
function podList(extra: unknown[] = []) {
  return {
    kind: 'PodList',
    apiVersion: 'v1',
    metadata: {},
    items: [
      {
        metadata: {
          name: 'frontend-6658cb9566-5n4b4',
          generateName: 'frontend-6658cb9566-',
          namespace: 'shop',
          uid: POD_UID,
          resourceVersion: '17021',
          creationTimestamp: '2024-05-14T09:21:07Z',
          labels: { app: 'frontend', 'pod-template-hash': '6658cb9566' },
          annotations: { 'kubernetes.io/config.seen': '2024-05-14T09:21:07.123Z' },
          ownerReferences: [
            {
              apiVersion: 'apps/v1',
              kind: 'ReplicaSet',
              name: 'frontend-6658cb9566',
              uid: '349d135e-3781-43e3-bc25-c900aedf1d0c',
              controller: true,
              blockOwnerDeletion: true,
            },
          ],
        },
        spec: {
          volumes: [
            { name: 'kube-api-access-x2v9q', projected: { defaultMode: 420, sources: [] } },
          ],
          initContainers: [{ name: 'migrate', image: 'registry.example.com/shop/migrate:2.1' }],
          containers: [
            {
              name: 'web',
              image: 'registry.example.com/shop/web:1.4.2',
              ports: [{ containerPort: 8080, protocol: 'TCP' }],
              resources: {},
              imagePullPolicy: 'IfNotPresent',
            },
            { name: 'envoy', image: 'envoyproxy/envoy:v1.30.1', resources: {} },
          ],
          restartPolicy: 'Always',
          serviceAccountName: 'frontend',
          serviceAccount: 'frontend',
          nodeName: 'node-1',
          schedulerName: 'default-scheduler',
        },
        status: {
          phase: 'Running',
          hostIP: '10.0.0.11',
          podIP: '10.244.1.7',
          qosClass: 'Burstable',
          startTime: '2024-05-14T09:21:07Z',
          initContainerStatuses: [
            {
              name: 'migrate',
              state: { terminated: { exitCode: 0, reason: 'Completed' } },
              ready: true,
              restartCount: 0,
              image: 'registry.example.com/shop/migrate:2.1',
              imageID:
                'registry.example.com/shop/migrate@sha256:1111111111111111111111111111111111111111111111111111111111111111',
              containerID: `containerd://${INIT}`,
            },
          ],
          containerStatuses: [
            {
              name: 'envoy',
              state: { running: { startedAt: '2024-05-14T09:21:09Z' } },
              ready: true,
              restartCount: 0,
              image: 'docker.io/envoyproxy/envoy:v1.30.1',
              imageID:
                'docker.io/envoyproxy/envoy@sha256:2222222222222222222222222222222222222222222222222222222222222222',
              containerID: `containerd://${SIDECAR}`,
              started: true,
            },
            {
              name: 'web',
              state: { running: { startedAt: '2024-05-14T09:21:09Z' } },
              lastState: {},
              ready: true,
              restartCount: 0,
              image: 'registry.example.com/shop/web:1.4.2',
              imageID:
                'registry.example.com/shop/web@sha256:3333333333333333333333333333333333333333333333333333333333333333',
              containerID: `containerd://${CTR}`,
              started: true,
            },
          ],
        },
      },
      {
        metadata: {
          name: 'starting',
          namespace: 'shop',
          uid: '0f9a1b2c-3d4e-5f60-7182-93a4b5c6d7e8',
        },
        spec: { containers: [{ name: 'app', image: 'app:1' }], nodeName: 'node-1' },
        status: {
          phase: 'Pending',
          containerStatuses: [
            {
              name: 'app',
              state: { waiting: { reason: 'ContainerCreating' } },
              ready: false,
              restartCount: 0,
              image: 'app:1',
              imageID: '',
            },
          ],
        },
      },
      ...extra,
    ],
  };
}

const newPod = {
  metadata: { name: 'late', namespace: 'batch', uid: NEW_POD_UID, labels: { job: 'x' } },
  spec: {
    serviceAccountName: 'default',
    nodeName: 'node-1',
    containers: [{ name: 'c', image: 'busybox' }],
  },
  status: {
    containerStatuses: [
      {
        name: 'c',
        image: 'docker.io/library/busybox:latest',
        imageID: '',
        containerID: `cri-o://${NEWCTR}`,
      },
    ],
  },
};

function openssl(args: string[], cwd: string) {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

async function makePki(dir: string) {
  for (const ca of ['ca', 'other-ca']) {
    openssl(
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        `${ca}.key`,
        '-out',
        `${ca}.crt`,
        '-days',
        '2',
        '-subj',
        `/CN=${ca}`,
      ],
      dir,
    );
  }
  openssl(
    [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'kubelet.key',
      '-out',
      'kubelet.csr',
      '-subj',
      '/CN=node-1',
    ],
    dir,
  );
  await writeFile(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:node-1\n');
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'kubelet.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'kubelet.crt',
      '-days',
      '2',
      '-extfile',
      'ext.cnf',
    ],
    dir,
  );
}

interface Behaviour {
  list: unknown;
  status?: number;
  hang?: boolean;
  body?: string;
}

describe('k8s attestor', () => {
  let dir = '';
  let proc = '';
  let server: https.Server;
  let plain: http.Server;
  let url = '';
  let plainUrl = '';
  const requests: string[] = [];
  let behaviour: Behaviour = { list: podList() };
  const clock = new ManualClock(Date.UTC(2030, 0, 1));

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    requests.push(`${req.method} ${req.url} auth=${req.headers.authorization ?? '-'}`);
    if (behaviour.hang) return;
    const secure = 'encrypted' in req.socket;
    if (req.url !== '/pods') {
      res.writeHead(404).end('404 page not found');
      return;
    }
    if (secure && req.headers.authorization !== `Bearer ${TOKEN}`) {
      res.writeHead(401, { 'content-type': 'text/plain' }).end('Unauthorized');
      return;
    }
    res.writeHead(behaviour.status ?? 200, { 'content-type': 'application/json' });
    res.end(behaviour.body ?? JSON.stringify(behaviour.list));
  };

  const cgroup = async (pid: number, text: string) => {
    await mkdir(path.join(proc, String(pid)), { recursive: true });
    await writeFile(path.join(proc, String(pid), 'cgroup'), text);
  };

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tessera-k8s-'));
    proc = path.join(dir, 'proc');
    await makePki(dir);
    await writeFile(path.join(dir, 'token'), `${TOKEN}\n`);
    await writeFile(path.join(dir, 'wrong-token'), 'not-the-token');
    server = https.createServer(
      {
        key: await readFile(path.join(dir, 'kubelet.key')),
        cert: await readFile(path.join(dir, 'kubelet.crt')),
      },
      handler,
    );
    plain = http.createServer(handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    plainUrl = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
    // containerd, cgroup v2, systemd driver
    await cgroup(
      201,
      `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD_UID.replaceAll('-', '_')}.slice/cri-containerd-${CTR}.scope\n`,
    );
    // init container, cgroup v1 cgroupfs
    await cgroup(
      202,
      [
        `12:pids:/kubepods/burstable/pod${POD_UID}/${INIT}`,
        `11:memory:/kubepods/burstable/pod${POD_UID}/${INIT}`,
        '0::/',
      ].join('\n'),
    );
    // CRI-O, systemd driver, the new pod
    await cgroup(
      203,
      `0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${NEW_POD_UID.replaceAll('-', '_')}.slice/crio-${NEWCTR}.scope\n`,
    );
    // a pod cgroup whose container no pod lists
    await cgroup(204, `0::/kubepods/besteffort/pod${POD_UID}/${'e'.repeat(64)}\n`);
    // not in a pod
    await cgroup(205, '0::/system.slice/sshd.service\n');
    // the right container id under the wrong pod UID
    await cgroup(206, `0::/kubepods/besteffort/pod${NEW_POD_UID}/${CTR}\n`);
  });
  after(async () => {
    for (const s of [server, plain]) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    requests.length = 0;
    behaviour = { list: podList() };
  });

  const attestor = (extra: Record<string, unknown> = {}, env?: Record<string, string>) =>
    createK8sAttestor(
      k8sConfigSchema.parse({
        kubelet_url: url,
        token_path: path.join(dir, 'token'),
        kubelet_ca_path: path.join(dir, 'ca.crt'),
        poll_retry_interval: '1ms',
        ...extra,
      }),
      { procRoot: proc, now: () => clock.now(), ...(env ? { env } : {}) },
    );

  it('describes the pod and container of a process', async () => {
    assert.deepEqual(texts(await attestor().attest(201, live())), [
      'k8s:ns:shop',
      'k8s:sa:frontend',
      'k8s:pod-name:frontend-6658cb9566-5n4b4',
      `k8s:pod-uid:${POD_UID}`,
      'k8s:node-name:node-1',
      'k8s:pod-label:app:frontend',
      'k8s:pod-label:pod-template-hash:6658cb9566',
      'k8s:pod-owner:ReplicaSet:frontend-6658cb9566',
      'k8s:pod-owner-uid:ReplicaSet:349d135e-3781-43e3-bc25-c900aedf1d0c',
      'k8s:container-name:web',
      'k8s:container-image:registry.example.com/shop/web:1.4.2',
      'k8s:container-image:registry.example.com/shop/web@sha256:3333333333333333333333333333333333333333333333333333333333333333',
      'k8s:pod-image:docker.io/envoyproxy/envoy:v1.30.1',
      'k8s:pod-image:docker.io/envoyproxy/envoy@sha256:2222222222222222222222222222222222222222222222222222222222222222',
      'k8s:pod-image:registry.example.com/shop/web:1.4.2',
      'k8s:pod-image:registry.example.com/shop/web@sha256:3333333333333333333333333333333333333333333333333333333333333333',
      'k8s:pod-init-image:registry.example.com/shop/migrate:2.1',
      'k8s:pod-init-image:registry.example.com/shop/migrate@sha256:1111111111111111111111111111111111111111111111111111111111111111',
      'k8s:pod-image-count:2',
      'k8s:pod-init-image-count:1',
    ]);
    assert.deepEqual(requests, [`GET /pods auth=Bearer ${TOKEN}`]);
  });

  it('finds init containers', async () => {
    const s = texts(await attestor().attest(202, live()));
    assert.ok(s.includes('k8s:container-name:migrate'));
    assert.ok(s.includes('k8s:container-image:registry.example.com/shop/migrate:2.1'));
  });

  it('reuses the pod list within its TTL and shares one request between concurrent attestations', async () => {
    const a = attestor();
    await Promise.all([1, 2, 3, 4, 5].map(() => a.attest(201, live())));
    assert.equal(requests.length, 1);
    clock.advance(500);
    await a.attest(202, live());
    assert.equal(requests.length, 1);
    clock.advance(600);
    await a.attest(201, live());
    assert.equal(requests.length, 2);
  });

  it('re-fetches once when the pod is newer than the cached list', async () => {
    const a = attestor();
    await a.attest(201, live());
    behaviour = { list: podList([newPod]) };
    const s = texts(await a.attest(203, live()));
    assert.ok(s.includes('k8s:pod-name:late'));
    assert.ok(s.includes('k8s:container-image:docker.io/library/busybox:latest'));
    assert.equal(requests.length, 2);
  });

  it('returns [] for a container no pod lists, after one retry', async () => {
    assert.deepEqual(await attestor().attest(204, live()), []);
    assert.equal(requests.length, 2);
  });

  it('requires the pod UID from the cgroup to match', async () => {
    assert.deepEqual(await attestor().attest(206, live()), []);
  });

  it('returns [] without asking the kubelet for a process outside any pod', async () => {
    assert.deepEqual(await attestor().attest(205, live()), []);
    assert.deepEqual(requests, []);
  });

  it('reports a token the kubelet refuses', async () => {
    await assert.rejects(
      attestor({ token_path: path.join(dir, 'wrong-token') }).attest(201, live()),
      {
        name: 'FailedPreconditionError',
        message: `k8s: the kubelet at ${url}/pods refused the agent (HTTP 401); check token_path and the agent's RBAC (nodes/proxy)`,
      },
    );
  });

  it('reports a missing token file', async () => {
    await assert.rejects(attestor({ token_path: path.join(dir, 'nope') }).attest(201, live()), {
      name: 'FailedPreconditionError',
      message: `k8s: cannot read token_path ${path.join(dir, 'nope')}: ENOENT`,
    });
  });

  it('refuses a kubelet certificate from another CA', async () => {
    await assert.rejects(
      attestor({ kubelet_ca_path: path.join(dir, 'other-ca.crt') }).attest(201, live()),
      (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.equal(e.name, 'FailedPreconditionError');
        assert.match(e.message, new RegExp(`^k8s: TLS verification of ${url}/pods failed: `));
        return true;
      },
    );
    assert.deepEqual(requests, []);
  });

  it('accepts any kubelet certificate only when told to', async () => {
    const a = attestor({
      kubelet_ca_path: path.join(dir, 'other-ca.crt'),
      skip_kubelet_verification: true,
    });
    assert.ok(texts(await a.attest(201, live())).includes('k8s:ns:shop'));
  });

  it('uses the read-only port without sending the token', async () => {
    const s = texts(await attestor({ kubelet_url: plainUrl }).attest(201, live()));
    assert.ok(s.includes('k8s:container-name:web'));
    assert.deepEqual(requests, ['GET /pods auth=-']);
  });

  it('gives up after the timeout', async () => {
    behaviour = { list: null, hang: true };
    await assert.rejects(attestor({ timeout: '150ms' }).attest(201, live()), {
      name: 'UnavailableError',
      message: `k8s: ${url}/pods gave no complete response within 150 ms`,
    });
  });

  it('refuses an oversized pod list', async () => {
    const big = podList(
      Array.from({ length: 200 }, (_, i) => ({
        ...newPod,
        metadata: {
          ...newPod.metadata,
          name: `filler-${i}`,
          uid: `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`,
        },
      })),
    );
    behaviour = { list: big };
    await assert.rejects(attestor({ max_response_bytes: 64 * 1024 }).attest(201, live()), {
      name: 'ResourceExhaustedError',
      message: `k8s: the response from ${url}/pods is larger than 65536 bytes (max_response_bytes)`,
    });
  });

  it('reports kubelet errors and malformed lists', async () => {
    behaviour = { list: null, status: 503, body: 'overloaded' };
    await assert.rejects(attestor().attest(201, live()), {
      name: 'UnavailableError',
      message: `k8s: the kubelet at ${url}/pods answered HTTP 503`,
    });
    behaviour = { list: { kind: 'PodList', items: [{ metadata: { name: 'x' } }] } };
    await assert.rejects(attestor().attest(201, live()), {
      message:
        'k8s: unexpected kubelet pod list: items.0.metadata.namespace: Invalid input: expected string, received undefined',
    });
  });

  it('refuses a container id two pods claim', async () => {
    const twin = {
      ...newPod,
      status: {
        containerStatuses: [{ name: 'c', image: 'x', containerID: `containerd://${CTR}` }],
      },
    };
    behaviour = { list: podList([twin]) };
    await assert.rejects(
      attestor({ container_id_cgroup_matchers: [`-(?<id>${CTR})\\.scope$`] }).attest(201, live()),
      {
        name: 'FailedPreconditionError',
        message: `k8s: container ${CTR} is claimed by two pods (shop/frontend-6658cb9566-5n4b4, batch/late)`,
      },
    );
  });

  it('takes the node name from config or the environment, never guessing', () => {
    assert.throws(() => createK8sAttestor(k8sConfigSchema.parse({}), { procRoot: proc, env: {} }), {
      name: 'InvalidArgumentError',
      message:
        'k8s: the kubelet address is unknown: set kubelet_url or node_name, or the NODE_NAME environment variable',
    });
    assert.equal(
      createK8sAttestor(k8sConfigSchema.parse({}), { env: { NODE_NAME: 'node-1' } }).type,
      'k8s',
    );
    assert.equal(
      createK8sAttestor(k8sConfigSchema.parse({ node_name_env: 'MY_NODE' }), {
        env: { MY_NODE: 'n' },
      }).type,
      'k8s',
    );
  });

  it('validates its config', () => {
    const issue = (input: unknown) => {
      const r = k8sConfigSchema.safeParse(input);
      assert.ok(!r.success);
      return `${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`;
    };
    assert.equal(
      issue({ kubelet_url: 'https://u:p@node:10250' }),
      'kubelet_url: must not carry credentials',
    );
    assert.match(issue({ kubelet_url: 'ftp://node' }), /^kubelet_url: /);
    assert.match(issue({ skip_kubelet_verification: 'yes' }), /^skip_kubelet_verification: /);
    assert.match(
      issue({ pod_list_cache_ttl: '0s' }),
      /^pod_list_cache_ttl: duration must be positive/,
    );
    const d = k8sConfigSchema.parse({});
    assert.equal(d.max_response_bytes, 32 * 1024 * 1024);
    assert.equal(d.pod_list_cache_ttl, 1000);
    assert.equal(d.skip_kubelet_verification, false);
    assert.equal(d.token_path, '/var/run/secrets/kubernetes.io/serviceaccount/token');
  });
});

describe('k8s cgroup matchers', () => {
  const find = (text: string) => findContainer(parseCgroupFile(text), defaultK8sMatchers, 'k8s');
  const uid = 'a2830d0d-b0f0-4ff0-81b5-0ee4e299cf80';
  const u_id = uid.replaceAll('-', '_');

  it('reads the layouts of cgroupfs, systemd, containerd, CRI-O, Docker and kind', () => {
    const cases: Array<[string, string | undefined]> = [
      [`11:memory:/kubepods/burstable/pod${uid}/${CTR}`, uid],
      [`0::/kubepods/pod${uid}/${CTR}`, uid], // Guaranteed QoS: no QoS level
      [
        `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${u_id}.slice/cri-containerd-${CTR}.scope`,
        uid,
      ],
      [`0::/kubepods.slice/kubepods-pod${u_id}.slice/cri-containerd-${CTR}.scope`, uid],
      [
        `1:name=systemd:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${u_id}.slice/crio-${CTR}.scope`,
        uid,
      ],
      [
        `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${u_id}.slice/docker-${CTR}.scope`,
        uid,
      ],
      [`0::/kubepods-besteffort-pod${u_id}.slice:cri-containerd:${CTR}`, uid],
      [`13:name=systemd:/docker/${'9'.repeat(64)}/kubepods/besteffort/pod${uid}/${CTR}`, uid],
      [
        `0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod${u_id}.slice/cri-containerd-${CTR}.scope`,
        uid,
      ],
      // seen from an agent in its own cgroup namespace
      [
        `0::/../../kubepods-burstable.slice/kubepods-burstable-pod${u_id}.slice/cri-containerd-${CTR}.scope`,
        uid,
      ],
      [`0::/../../../pod${uid}/${CTR}`, uid],
      [`0::/../crio-${CTR}.scope`, undefined],
    ];
    for (const [text, podUid] of cases) {
      assert.deepEqual(
        find(text),
        podUid ? { containerId: CTR, podUid } : { containerId: CTR },
        text,
      );
    }
  });

  it('ignores look-alikes: delegated user cgroups, sub-cgroups, conmon, plain Docker', () => {
    for (const text of [
      `0::/user.slice/user-1000.slice/user@1000.service/kubepods.slice/kubepods-pod${u_id}.slice/cri-containerd-${CTR}.scope`,
      `0::/../../user.slice/user-1000.slice/user@1000.service/app.slice/pod${uid}/${CTR}`,
      `0::/kubepods.slice/kubepods-pod${u_id}.slice/cri-containerd-${'1'.repeat(64)}.scope/kubepods/pod${uid}/${CTR}`,
      `0::/kubepods.slice/kubepods-pod${u_id}.slice/crio-conmon-${CTR}.scope`,
      `0::/../docker-${CTR}.scope`,
      `0::/system.slice/docker-${CTR}.scope`,
      '0::/init.scope',
      '',
    ]) {
      assert.equal(find(text), null, text);
    }
  });
});
