// `tessera access-policy test` and `what-if` in-process against the real TestAccess/WhatIfAccess
// handlers, served by connect-node on a Unix socket (HTTP/1.1, as the admin socket), over a real
// SQLite audit log. The full server registers these handlers beside the model's (access-model);
// the black-box path through `tessera server run` is covered once both are wired.
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import type { AccessPolicy, ServerWorkload } from '../../core/access.ts';
import { ManualClock } from '../../core/clock.ts';
import { AccessPolicyService } from '../../../proto/gen/tessera/v1/access_pb.js';
import { toConnectError } from '../../server/api/error-map.ts';
import { accessDecisionHandlers } from '../../server/api/handlers/access-decision-handlers.ts';
import { PolicyDecider } from '../../server/access/decider.ts';
import { allow, deny, server } from '../../server/access/testing/fixtures.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/types.ts';
import { runCli } from '../testing/harness.ts';
import { parseAtTime } from './access-policy-time.ts';

const WEB = 'spiffe://td/ns/prod/sa/web';
const BATCH = 'spiffe://td/ns/prod/sa/batch';
const HOUR = 3_600_000;

describe('tessera access-policy test / what-if', () => {
  let dir: string;
  let socket: string;
  let store: Store;
  let srv: http.Server;
  const now = Date.now();
  const servers: ServerWorkload[] = [server('db')];
  const policies: AccessPolicy[] = [
    allow('web', WEB, { condition: 'client.attributes["team"] == "payments" && now.hour < 25' }),
    deny('no-batch', BATCH),
  ];
  const source = { listServerWorkloads: async () => servers, listPolicies: async () => policies };
  const cli = (...args: string[]) => runCli([...args, '--socket', socket]);

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-ap-cli-'));
    socket = path.join(dir, 'admin.sock');
    const clock = new ManualClock(now);
    store = await openStore({ kind: 'sqlite', path: path.join(dir, 'db') }, clock);
    const attributes = { team: 'payments' };
    await store.audit.appendMany(
      // Oldest first, as the log is appended.
      [WEB, BATCH, WEB].map((client, i) => ({
        time: now - (3 - i) * HOUR,
        actor: client,
        action: 'access.request',
        target: 'db',
        outcome: 'success' as const,
        correlationId: `c${i}`,
        details: { client, selectors: [], attributes, server: 'db', agent: '' },
      })),
    );
    const decider = await PolicyDecider.create({ source, log: { warn: () => {} } });
    const handlers = accessDecisionHandlers({
      decider,
      whatIf: { audit: store.audit, source },
      clock,
      // Stand-in for parseAccessDocument: "name client [deny]" per line.
      parseDocument: (text) => ({
        serverWorkloads: [],
        accessPolicies: text
          .trim()
          .split('\n')
          .map((l) => l.split(' '))
          .map(([n, c, d]) => (d ? deny(n!, c!) : allow(n!, c!))),
      }),
    });
    const adapter = connectNodeAdapter({
      routes: (r) => r.service(AccessPolicyService, handlers),
      interceptors: [
        (next) => async (req) => {
          try {
            return await next(req);
          } catch (e) {
            throw toConnectError(e, 'test', () => {});
          }
        },
      ],
    });
    srv = http.createServer(adapter);
    await new Promise<void>((r) => srv.listen(socket, r));
  });
  after(async () => {
    await new Promise((r) => srv.close(r));
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints the decision, the deciding policy and the failing condition; a denial exits 0', async () => {
    const ok = await cli(
      'access-policy',
      'test',
      '--client',
      WEB,
      '--server',
      'db',
      '--attr',
      'team=payments',
    );
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^Decision: +allow$/m);
    assert.match(ok.stdout, /^Policy: +web$/m);
    assert.match(ok.stdout, /^Credential provider: +db-password$/m);

    const no = await cli(
      'access-policy',
      'test',
      '--client',
      WEB,
      '--server',
      'db',
      '--attr',
      'team=web',
      '--output',
      'json',
    );
    assert.equal(no.code, 0, no.stderr);
    const j = JSON.parse(no.stdout) as Record<string, unknown>;
    assert.deepEqual(j, {
      decision: 'deny',
      reason: 'condition-false',
      policy: 'web',
      credentialProvider: null,
      failedCondition: 'client.attributes["team"] == "payments"',
      at: null,
    });
  });

  it('--expect turns a mismatch into exit 7; --at takes RFC 3339 and relative times', async () => {
    const r = await cli(
      'access-policy',
      'test',
      '--client',
      BATCH,
      '--server',
      'db',
      '--expect',
      'allow',
    );
    assert.equal(r.code, 7);
    assert.match(r.stdout, /^Reason: +denied-by-policy$/m);
    assert.match(r.stderr, /error: expected allow, got deny \(denied-by-policy\)/);
    const d = await cli(
      'access-policy',
      'test',
      '--client',
      BATCH,
      '--server',
      'db',
      '--expect',
      'deny',
      '--at',
      '2026-12-07T22:00:00Z',
    );
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stdout, /^At: +2026-12-07T22:00:00.000Z$/m);
    assert.equal(parseAtTime('-2h', 10 * HOUR), 8 * HOUR);
    assert.equal(parseAtTime('+1d', 0), 24 * HOUR);
    assert.equal(parseAtTime('2026-12-07T23:00:00+01:00', 0), Date.parse('2026-12-07T22:00:00Z'));
  });

  it('bad input: a clear error and the usual exit codes', async () => {
    const bad = await cli('access-policy', 'test', '--client', 'web', '--server', 'db');
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /error: client: invalid SPIFFE ID "web": it must start with "spiffe:\/\/"/,
    );
    const at = await cli(
      'access-policy',
      'test',
      '--client',
      WEB,
      '--server',
      'db',
      '--at',
      'yesterday',
    );
    assert.equal(at.code, 2);
    assert.match(at.stderr, /--at: "yesterday" is not a time/);
    const attr = await cli(
      'access-policy',
      'test',
      '--client',
      WEB,
      '--server',
      'db',
      '--attr',
      'novalue',
    );
    assert.equal(attr.code, 2);
    assert.match(attr.stderr, /--attr: expected NAME=VALUE, got "novalue"/);
    const unknown = await cli('access-policy', 'test', '--client', WEB, '--server', 'nope');
    assert.equal(unknown.code, 0);
    assert.match(unknown.stdout, /^Reason: +unknown-server-workload$/m);
  });

  it('what-if lists the flips as a table and as JSON', async () => {
    const file = path.join(dir, 'proposed.txt');
    writeFileSync(file, `web ${WEB}\nbatch ${BATCH}\n`);
    const t = await cli('access-policy', 'what-if', '--file', file);
    assert.equal(t.code, 0, t.stderr);
    const lines = t.stdout.trim().split('\n');
    assert.match(lines[0]!, /^TIME +CLIENT +SERVER +NOW +PROPOSED$/);
    assert.match(
      lines[1]!,
      /spiffe:\/\/td\/ns\/prod\/sa\/batch +db +deny \(no-batch\) +allow \(batch\)$/,
    );
    assert.equal(
      lines.at(-1),
      '3 requests replayed: 1 would flip (0 allow → deny, 1 deny → allow)',
    );

    const j = await cli(
      'access-policy',
      'what-if',
      '--file',
      file,
      '--since',
      '90m',
      '--output',
      'json',
    );
    assert.equal(j.code, 0, j.stderr);
    const doc = JSON.parse(j.stdout) as { replayed: number; flipCount: number; flips: unknown[] };
    assert.deepEqual([doc.replayed, doc.flipCount, doc.flips.length], [1, 0, 0]);

    const none = await cli('access-policy', 'what-if', '--file', path.join(dir, 'missing.yaml'));
    assert.equal(none.code, 3);
    const since = await cli('access-policy', 'what-if', '--file', file, '--since', 'soon');
    assert.equal(since.code, 2);
    assert.match(since.stderr, /--since: invalid duration "soon"/);
  });
});
