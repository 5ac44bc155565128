// The loopback HTTP door over real loopback TCP attestation of this process (/proc/net/tcp →
// inode → pid, pinned), the real cache and service, a scripted server side.
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UnavailableError } from '../../core/errors.ts';
import { silentLogger } from '../workload-api/log.ts';
import { startCredentialHttp, type CredentialHttp } from './http-door.ts';
import { released, testEntry, UID, world, type World } from './testing/fixtures.ts';

const WEB = 'spiffe://example.org/web';

interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Record<string, unknown>;
}

function request(
  door: CredentialHttp,
  target: string,
  headers: Record<string, string> = { 'Tessera-Credential': 'true' },
  method = 'GET',
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: door.host, port: door.port, path: target, method, headers, agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('credential API over loopback HTTP', () => {
  let w: World;
  let door: CredentialHttp;
  before(async () => {
    w = world([testEntry('e-web', WEB, [`unix:uid:${UID}`])]);
    door = await startCredentialHttp({
      host: '127.0.0.1',
      port: 0,
      attestation: w.attestation,
      credentials: w.credentials,
      log: silentLogger,
    });
  });
  after(() => door.close());

  it('answers an attested caller with the credential as JSON', async () => {
    w.server.answer = async (p) => released(p, 'the-token', Date.UTC(2030, 0, 1));
    const a = await request(door, '/v1/credentials/db');
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.equal(a.headers['cache-control'], 'no-store');
    assert.deepEqual(a.body, {
      spiffe_id: WEB,
      server_workload: 'db',
      token: 'the-token',
      expires_at: '2030-01-01T00:00:00.000Z',
      present: 'authorization-bearer',
      lease_id: '',
      correlation_id: w.server.asks[0]?.correlationId,
    });
    assert.equal(w.server.asks[0]?.entryId, 'e-web');
    const again = await request(door, `/v1/credentials/db?spiffe_id=${encodeURIComponent(WEB)}`);
    assert.equal(again.body['token'], 'the-token');
    assert.equal(w.server.asks.length, 1); // from the cache
  });

  it('requires exactly "Tessera-Credential: true" (400 naming the header)', async () => {
    for (const headers of [{}, { 'Tessera-Credential': 'false' }, { 'tessera-credential': '1' }]) {
      const a = await request(door, '/v1/credentials/db', headers);
      assert.equal(a.status, 400);
      assert.equal(
        a.body['error'],
        'header "Tessera-Credential: true" required (it protects against request forgery)',
      );
      assert.equal(a.body['token'], undefined);
    }
  });

  it('refuses requests that came through a proxy', async () => {
    for (const h of ['Forwarded', 'X-Forwarded-For', 'X-Real-IP', 'Via']) {
      const a = await request(door, '/v1/credentials/db', {
        'Tessera-Credential': 'true',
        [h]: '10.0.0.1',
      });
      assert.equal(a.status, 400, h);
      assert.match(String(a.body['error']), /came through a proxy/);
    }
  });

  it('refuses other methods, paths, parameters and over-long targets', async () => {
    const cases: [string, string, number, RegExp][] = [
      ['POST', '/v1/credentials/db', 405, /method POST not allowed/],
      ['GET', '/v1/credentials/', 404, /use GET \/v1\/credentials\/\{server_workload\}/],
      ['GET', '/v1/credentials/db/x', 404, /not found/],
      ['GET', '/latest/meta-data/', 404, /not found/],
      ['GET', '/v1/credentials/db?role=admin', 400, /unknown query parameter "role"/],
      ['GET', '/v1/credentials/db?spiffe_id=a&spiffe_id=b', 400, /more than once/],
      ['GET', '/v1/credentials/%E0%A4%A', 400, /malformed percent-encoding/],
      ['GET', '/v1/credentials/Not_A..Name!', 400, /invalid server_workload/],
      ['GET', `/v1/credentials/${'a'.repeat(3000)}`, 414, /longer than 2048 bytes/],
    ];
    for (const [method, target, status, error] of cases) {
      const a = await request(door, target, { 'Tessera-Credential': 'true' }, method);
      assert.equal(a.status, status, `${method} ${target.slice(0, 40)}`);
      assert.match(String(a.body['error']), error);
    }
  });

  it('answers a denial with 403 naming the reason, policy and failed condition', async () => {
    w.server.answer = async () => ({
      kind: 'denied',
      denial: {
        reason: 'denied-by-policy',
        policy: 'no-web-to-db',
        failedCondition: '',
        correlationId: 'corr-9',
      },
    });
    const a = await request(door, '/v1/credentials/db2');
    assert.equal(a.status, 403);
    assert.deepEqual(a.body, {
      error: `access to server workload "db2" denied for ${WEB}: denied-by-policy (policy "no-web-to-db")`,
      spiffe_id: WEB,
      server_workload: 'db2',
      reason: 'denied-by-policy',
      policy: 'no-web-to-db',
      failed_condition: '',
      correlation_id: 'corr-9',
    });
  });

  it('answers 503 naming the cause when the server is away', async () => {
    w.server.answer = async () => {
      throw new UnavailableError('the Tessera server (127.0.0.1:1) does not answer: refused');
    };
    const a = await request(door, '/v1/credentials/db3');
    assert.equal(a.status, 503);
    assert.equal(a.body['error'], 'the Tessera server (127.0.0.1:1) does not answer: refused');
  });

  it('refuses to listen on a non-loopback address', async () => {
    for (const host of ['0.0.0.0', '::', '192.168.1.10']) {
      await assert.rejects(
        startCredentialHttp({
          host,
          port: 0,
          attestation: w.attestation,
          credentials: w.credentials,
          log: silentLogger,
        }),
        {
          message: `credentials.http_listen: ${host} is not a loopback address (use 127.0.0.1 or [::1])`,
        },
      );
    }
  });
});

describe('credential API over loopback HTTP: a caller that cannot be attested', () => {
  it('is refused with 403 and nothing is asked of the server', async () => {
    // The socket tables are read from an empty /proc: the connection cannot be found, as when
    // its owner cannot be told unambiguously (tcp-peer.ts refuses both the same way).
    const proc = mkdtempSync(path.join(tmpdir(), 'tessera-noproc-'));
    const w = world([testEntry('e-web', WEB, [`unix:uid:${UID}`])], { tcp: { procRoot: proc } });
    const door = await startCredentialHttp({
      host: '127.0.0.1',
      port: 0,
      attestation: w.attestation,
      credentials: w.credentials,
      log: silentLogger,
    });
    try {
      const a = await request(door, '/v1/credentials/db');
      assert.equal(a.status, 403);
      assert.match(String(a.body['error']), /^could not attest the caller: /);
      assert.equal(w.server.asks.length, 0);
    } finally {
      await door.close();
      rmSync(proc, { recursive: true, force: true });
    }
  });
});
