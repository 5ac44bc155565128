import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { formatSelector } from '../../../core/selector.ts';
import type { Selector } from '../../../core/selector.ts';
import { createDockerAttestor, dockerConfigSchema } from './attestor.ts';

const live = () => new AbortController().signal;
const texts = (s: readonly Selector[]) => s.map(formatSelector);

const ID = '3b3b1d3a5e8c0f6e2d4a9c7b1e0f2a3d4c5b6a7980e1f2d3c4b5a69788796a5b';
const IMAGE_ID = 'sha256:9c7a54a9a43cca047013b82af109fe963fde787f63f9e016fdc3384500c2823d';

// GET /v1.44/containers/{id}/json as dockerd 25 returns it (trimmed of nothing this attestor
// reads; the rest is kept so the parser proves it ignores what it does not use).
const inspectDoc = {
  Id: ID,
  Created: '2024-05-14T09:21:07.123456789Z',
  Path: '/docker-entrypoint.sh',
  Args: ['nginx', '-g', 'daemon off;'],
  State: {
    Status: 'running',
    Running: true,
    Paused: false,
    Restarting: false,
    OOMKilled: false,
    Dead: false,
    Pid: 4242,
    ExitCode: 0,
    Error: '',
    StartedAt: '2024-05-14T09:21:07.512345678Z',
    FinishedAt: '0001-01-01T00:00:00Z',
  },
  Image: IMAGE_ID,
  ResolvConfPath: `/var/lib/docker/containers/${ID}/resolv.conf`,
  HostnamePath: `/var/lib/docker/containers/${ID}/hostname`,
  HostsPath: `/var/lib/docker/containers/${ID}/hosts`,
  LogPath: `/var/lib/docker/containers/${ID}/${ID}-json.log`,
  Name: '/web-frontend',
  RestartCount: 0,
  Driver: 'overlay2',
  Platform: 'linux',
  MountLabel: '',
  ProcessLabel: '',
  AppArmorProfile: 'docker-default',
  ExecIDs: null,
  HostConfig: {
    Binds: null,
    NetworkMode: 'bridge',
    PortBindings: { '80/tcp': [{ HostIp: '', HostPort: '8080' }] },
    RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
    AutoRemove: false,
    Privileged: false,
  },
  GraphDriver: { Data: { MergedDir: '/var/lib/docker/overlay2/abc/merged' }, Name: 'overlay2' },
  Mounts: [],
  Config: {
    Hostname: '3b3b1d3a5e8c',
    Domainname: '',
    User: '',
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    ExposedPorts: { '80/tcp': {} },
    Tty: false,
    OpenStdin: false,
    StdinOnce: false,
    Env: [
      'APP_ENV=production',
      'DATABASE_PASSWORD=hunter2',
      'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      'NGINX_VERSION=1.25.5',
      'EMPTY=',
      'QUERY=a=b',
    ],
    Cmd: ['nginx', '-g', 'daemon off;'],
    Image: 'nginx:1.25',
    Volumes: null,
    WorkingDir: '',
    Entrypoint: ['/docker-entrypoint.sh'],
    OnBuild: null,
    Labels: {
      'com.example.team': 'frontend',
      maintainer: 'NGINX Docker Maintainers <docker-maint@nginx.com>',
      'com.docker.compose.service': 'web',
    },
    StopSignal: 'SIGQUIT',
  },
  NetworkSettings: {
    Bridge: '',
    SandboxID: 'f0e1d2c3b4a5',
    Ports: { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }] },
    IPAddress: '172.17.0.2',
    Networks: { bridge: { IPAddress: '172.17.0.2', Gateway: '172.17.0.1' } },
  },
};

interface Behaviour {
  status: number;
  body: string;
  hang?: boolean;
  chunked?: boolean;
}

describe('docker attestor', () => {
  let dir = '';
  let proc = '';
  let socketPath = '';
  let server: http.Server;
  const requests: string[] = [];
  let behaviour: Behaviour = { status: 200, body: JSON.stringify(inspectDoc) };

  const cgroup = async (pid: number, text: string) => {
    await mkdir(path.join(proc, String(pid)), { recursive: true });
    await writeFile(path.join(proc, String(pid), 'cgroup'), text);
  };

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tessera-docker-'));
    proc = path.join(dir, 'proc');
    socketPath = path.join(dir, 'docker.sock');
    server = http.createServer((req, res) => {
      requests.push(`${req.method} ${req.url} host=${req.headers.host}`);
      if (behaviour.hang) return; // never answers
      const m = /^(?:\/v[\d.]+)?\/containers\/([0-9a-f]{64})\/json$/.exec(req.url ?? '');
      if (!m || m[1] !== ID) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: `No such container: ${m?.[1] ?? req.url}` }));
        return;
      }
      if (behaviour.chunked) {
        res.writeHead(behaviour.status, { 'content-type': 'application/json' });
        const piece = 'x'.repeat(64 * 1024);
        for (let i = 0; i < 64; i++) res.write(piece);
        res.end();
        return;
      }
      res.writeHead(behaviour.status, { 'content-type': 'application/json' });
      res.end(behaviour.body);
    });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    // Process layouts, as /proc/<pid>/cgroup reads on real hosts.
    await cgroup(
      101,
      [
        `12:pids:/docker/${ID}`,
        `11:memory:/docker/${ID}`,
        `10:cpu,cpuacct:/docker/${ID}`,
        `1:name=systemd:/docker/${ID}`,
        `0::/system.slice/containerd.service`,
      ].join('\n') + '\n',
    );
    await cgroup(102, `0::/system.slice/docker-${ID}.scope\n`);
    await cgroup(103, `0::/../docker-${ID}.scope\n`);
    await cgroup(
      104,
      `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f9a1b2c_3d4e_5f60_7182_93a4b5c6d7e8.slice/docker-${ID}.scope\n`,
    );
    await cgroup(105, '0::/user.slice/user-1000.slice/session-2.scope\n');
    await cgroup(
      106,
      `0::/user.slice/user-1000.slice/user@1000.service/app.slice/docker-${ID}.scope\n`,
    );
    await cgroup(107, `12:pids:/docker/${ID}\n11:memory:/docker/${'a'.repeat(64)}\n`);
    await cgroup(108, `0::/docker/${'f'.repeat(64)}\n`);
    await cgroup(109, `0::/custom/ctr-${ID}\n`);
    await cgroup(110, `0::/kubepods/burstable/pod0f9a1b2c-3d4e-5f60-7182-93a4b5c6d7e8/${ID}\n`);
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    requests.length = 0;
    behaviour = { status: 200, body: JSON.stringify(inspectDoc) };
  });

  const attestor = (extra: Record<string, unknown> = {}) =>
    createDockerAttestor(dockerConfigSchema.parse({ docker_socket_path: socketPath, ...extra }), {
      procRoot: proc,
    });

  const expected = [
    'docker:label:com.docker.compose.service:web',
    'docker:label:com.example.team:frontend',
    'docker:label:maintainer:NGINX Docker Maintainers <docker-maint@nginx.com>',
    'docker:image_id:nginx:1.25',
    `docker:image_config_digest:${IMAGE_ID}`,
    'docker:name:web-frontend',
  ];

  it('describes the container of a cgroup v1 process', async () => {
    assert.deepEqual(texts(await attestor().attest(101, live())), expected);
    assert.deepEqual(requests, [`GET /containers/${ID}/json host=docker`]);
  });

  it('finds the container in cgroup v2 systemd, cgroup-namespace and cri-dockerd forms', async () => {
    for (const pid of [102, 103, 104]) {
      assert.deepEqual(texts(await attestor().attest(pid, live())), expected, `pid ${pid}`);
    }
  });

  it('pins the API version when configured', async () => {
    await attestor({ docker_version: '1.44' }).attest(102, live());
    assert.deepEqual(requests, [`GET /v1.44/containers/${ID}/json host=docker`]);
  });

  it('emits env only for the listed keys', async () => {
    const s = texts(
      await attestor({ env_keys: ['APP_ENV', 'EMPTY', 'QUERY', 'ABSENT'] }).attest(101, live()),
    );
    assert.deepEqual(
      s.filter((t) => t.startsWith('docker:env:')),
      ['docker:env:APP_ENV=production', 'docker:env:EMPTY=', 'docker:env:QUERY=a=b'],
    );
    assert.ok(!s.some((t) => t.includes('hunter2')));
  });

  it('returns [] without asking the daemon for a process outside any container', async () => {
    assert.deepEqual(await attestor().attest(105, live()), []);
    assert.deepEqual(requests, []);
  });

  it('ignores docker-like cgroups a user created in a delegated subtree', async () => {
    assert.deepEqual(await attestor().attest(106, live()), []);
    assert.deepEqual(requests, []);
  });

  it('leaves the runtime-less kubepods form to the k8s attestor', async () => {
    assert.deepEqual(await attestor().attest(110, live()), []);
  });

  it('refuses cgroups that name two containers', async () => {
    await assert.rejects(attestor().attest(107, live()), {
      name: 'FailedPreconditionError',
      message: `docker: the cgroups name more than one container (${ID}, ${'a'.repeat(64)})`,
    });
  });

  it('uses configured matchers instead of the defaults', async () => {
    const a = attestor({ container_id_cgroup_matchers: ['^/custom/ctr-(?<id>[0-9a-f]{64})$'] });
    assert.deepEqual(texts(await a.attest(109, live())), expected);
    assert.deepEqual(await a.attest(102, live()), []);
  });

  it('reports a container the daemon does not know as unavailable', async () => {
    await assert.rejects(attestor().attest(108, live()), {
      name: 'UnavailableError',
      message: `docker: container ${'f'.repeat(64)} is unknown to the Docker daemon (it may have exited)`,
    });
  });

  it('reports daemon errors with their message', async () => {
    behaviour = { status: 500, body: JSON.stringify({ message: 'boom' }) };
    await assert.rejects(attestor().attest(101, live()), {
      name: 'UnavailableError',
      message: `docker: the Docker daemon answered 500 for container ${ID}: boom`,
    });
  });

  it('reports a missing socket as unavailable', async () => {
    const a = createDockerAttestor(
      dockerConfigSchema.parse({ docker_socket_path: `unix://${dir}/nope.sock` }),
      { procRoot: proc },
    );
    await assert.rejects(a.attest(101, live()), {
      name: 'UnavailableError',
      message: `docker: cannot reach ${dir}/nope.sock: ENOENT`,
    });
  });

  it('gives up after the timeout', async () => {
    behaviour = { status: 200, body: '', hang: true };
    const started = Date.now();
    await assert.rejects(attestor({ timeout: '150ms' }).attest(101, live()), {
      name: 'UnavailableError',
      message: `docker: ${socketPath} gave no complete response within 150 ms`,
    });
    assert.ok(Date.now() - started < 2_000);
  });

  it('refuses an oversized response, declared or streamed', async () => {
    behaviour = { status: 200, body: 'y'.repeat(8192) };
    await assert.rejects(attestor({ max_response_bytes: 4096 }).attest(101, live()), {
      name: 'ResourceExhaustedError',
      message: `docker: the response from ${socketPath} is larger than 4096 bytes (max_response_bytes)`,
    });
    behaviour = { status: 200, body: '', chunked: true };
    await assert.rejects(attestor({ max_response_bytes: 1024 * 1024 }).attest(101, live()), {
      name: 'ResourceExhaustedError',
    });
  });

  it('rejects a response that is not the container asked for', async () => {
    behaviour = { status: 200, body: JSON.stringify({ ...inspectDoc, Id: 'a'.repeat(64) }) };
    await assert.rejects(attestor().attest(101, live()), {
      name: 'TesseraError',
      message: `docker: asked for container ${ID}, got ${'a'.repeat(64)}`,
    });
    behaviour = { status: 200, body: 'not json' };
    await assert.rejects(attestor().attest(101, live()), {
      message: 'docker: the container inspect response is not JSON',
    });
  });

  it('handles null labels and env, as the API sends for a bare container', async () => {
    const bare = {
      ...inspectDoc,
      Name: '/bare',
      Config: { ...inspectDoc.Config, Labels: null, Env: null },
    };
    behaviour = { status: 200, body: JSON.stringify(bare) };
    assert.deepEqual(texts(await attestor({ env_keys: ['APP_ENV'] }).attest(101, live())), [
      'docker:image_id:nginx:1.25',
      `docker:image_config_digest:${IMAGE_ID}`,
      'docker:name:bare',
    ]);
  });

  it('drops label selectors no entry could hold', async () => {
    const noisy = {
      ...inspectDoc,
      Config: { ...inspectDoc.Config, Labels: { huge: 'v'.repeat(2000), ctl: 'a\nb', ok: '1' } },
    };
    behaviour = { status: 200, body: JSON.stringify(noisy) };
    const s = texts(await attestor().attest(101, live()));
    assert.ok(s.includes('docker:label:ok:1'));
    assert.ok(
      !s.some((t) => t.startsWith('docker:label:huge') || t.startsWith('docker:label:ctl')),
    );
  });

  it('reports a process that is gone as unavailable', async () => {
    await assert.rejects(attestor().attest(999999, live()), {
      name: 'UnavailableError',
      message: 'docker: process 999999 exited during attestation',
    });
  });

  it('validates its config', () => {
    const issue = (input: unknown) => {
      const r = dockerConfigSchema.safeParse(input);
      assert.ok(!r.success);
      return `${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`;
    };
    assert.equal(
      issue({ container_id_cgroup_matchers: ['(unclosed'] }),
      'container_id_cgroup_matchers.0: invalid regex: Invalid regular expression: /(unclosed/: Unterminated group',
    );
    assert.equal(
      issue({ container_id_cgroup_matchers: ['^/docker/([0-9a-f]{64})$'] }),
      'container_id_cgroup_matchers.0: the regex needs a named group (?<id>...)',
    );
    assert.equal(issue({ env_keys: ['A=B'] }), 'env_keys.0: expected an environment variable name');
    assert.equal(
      issue({ docker_version: 'v1.44' }),
      'docker_version: expected an API version like "1.44", or ""',
    );
    assert.match(issue({ socket: '/x' }), /^: Unrecognized key: "socket"/);
    const d = dockerConfigSchema.parse({});
    assert.equal(d.docker_socket_path, '/var/run/docker.sock');
    assert.equal(d.docker_version, '');
    assert.equal(d.timeout, 5000);
    assert.deepEqual(d.env_keys, []);
  });
});
