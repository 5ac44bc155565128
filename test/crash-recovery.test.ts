// kill -9 at arbitrary points during entry writes and authority rotation, then restart: entries,
// audit, keys and the bundle must be consistent and no published key may be lost.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createCsr } from '../src/crypto/x509/csr-create.ts';
import { derToPem } from '../src/crypto/x509/pem.ts';
import { adminClients, entry } from './helpers/admin.ts';
import { verifyWithBundle } from './helpers/jwt.ts';
import { opensslVerify } from './helpers/openssl.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';
import { newKey } from './helpers/stand-in-agent.ts';

const servers: ServerProcess[] = [];
after(async () => {
  for (const s of servers) await s.kill();
});

describe('crash recovery (kill -9)', () => {
  it('keeps every acknowledged entry, with its audit record, after kill -9 during writes', async () => {
    const server = await startServer();
    servers.push(server);
    const admin = adminClients(server.adminSocket);
    const acked: string[] = [];
    let stop = false;
    const writer = async (w: number) => {
      for (let i = 0; i < 400 && !stop; i++) {
        try {
          const r = await admin.entries.batchCreateEntry({
            entries: [
              entry(`spiffe://example.org/w${w}/e${i}`, 'spiffe://example.org/parent', [
                'unix:uid:1',
              ]),
            ],
          });
          const id = r.results[0]?.entry?.id;
          if (id) acked.push(id);
        } catch {
          return; // the server is gone
        }
      }
    };
    const writers = [0, 1, 2, 3].map(writer);
    while (acked.length < 60) await new Promise((r) => setTimeout(r, 5));
    await server.kill();
    stop = true;
    await Promise.all(writers);

    await server.restart();
    const after = adminClients(server.adminSocket);
    const ids = new Set<string>();
    let token = '';
    do {
      const page = await after.entries.listEntries({ pageSize: 1000, pageToken: token });
      for (const e of page.entries) ids.add(e.id);
      token = page.nextPageToken;
    } while (token);
    for (const id of acked) assert.ok(ids.has(id), `acknowledged entry ${id} lost`);
    assert.ok(
      ids.size <= acked.length + 4,
      `${ids.size} entries for ${acked.length} acknowledged writes`,
    );
    const audited = new Set<string>();
    let afterSeq = 0n;
    for (;;) {
      const page = await after.audit.listAuditRecords({
        action: 'entry.create',
        afterSeq,
        limit: 1000,
      });
      if (page.records.length === 0) break;
      for (const r of page.records) audited.add(r.target);
      afterSeq = page.records[page.records.length - 1]!.seq;
    }
    assert.deepEqual(
      [...ids].filter((id) => !audited.has(id)),
      [],
      'every stored entry has its audit record',
    );
    const v = await after.audit.verifyAuditLog({});
    assert.equal(v.ok, true, v.reason);
    await server.stop();
  });

  it('loses no published key and keeps authorities usable after kill -9 during rotation', async () => {
    const server = await startServer();
    servers.push(server);
    const admin = adminClients(server.adminSocket);
    const everActive = { x509: new Set<string>(), jwt: new Set<string>() };
    let stop = false;
    const rotate = async (kind: 'x509' | 'jwt') => {
      for (let i = 0; i < 50 && !stop; i++) {
        try {
          await admin.authorities.prepareAuthority({ kind });
          const a = await admin.authorities.activateAuthority({ kind });
          everActive[kind].add(
            kind === 'jwt'
              ? a.authority!.id
              : Buffer.from(a.authority!.certificate).toString('base64'),
          );
        } catch {
          return;
        }
      }
    };
    const loops = [rotate('x509'), rotate('jwt')];
    while (everActive.x509.size < 3 || everActive.jwt.size < 3)
      await new Promise((r) => setTimeout(r, 5));
    await server.kill();
    stop = true;
    await Promise.all(loops);

    await server.restart();
    const after = adminClients(server.adminSocket);
    const bundle = (await after.bundles.getBundle({})).bundle!;
    const x509InBundle = new Set(
      bundle.x509Authorities.map((d) => Buffer.from(d).toString('base64')),
    );
    const kids = new Set(bundle.jwtAuthorities.map((k) => k.kid));
    for (const der of everActive.x509)
      assert.ok(x509InBundle.has(der), 'an X.509 authority that signed is missing from the bundle');
    for (const kid of everActive.jwt)
      assert.ok(kids.has(kid), `JWT key ${kid} that signed is missing from the bundle`);
    // Every recorded authority is published, and the active ones sign what the bundle verifies.
    const all = (await after.authorities.getAuthorities({})).authorities;
    for (const a of all) {
      if (a.kind === 'jwt') assert.ok(kids.has(a.id), `authority ${a.id} not in bundle`);
      else
        assert.ok(
          x509InBundle.has(Buffer.from(a.certificate).toString('base64')),
          `x509 authority ${a.id} not in bundle`,
        );
    }
    assert.equal(all.filter((a) => a.status === 'active').length, 2);
    const minted = await after.svids.mintX509SVID({
      spiffeId: 'spiffe://example.org/after-crash',
      csr: createCsr(newKey()),
    });
    const bundlePem = bundle.x509Authorities.map((d) => derToPem(d)).join('');
    assert.equal(
      opensslVerify(bundlePem, minted.svidChain.map((d) => derToPem(d)).join('')).ok,
      true,
    );
    const jwt = await after.svids.mintJWTSVID({
      spiffeId: 'spiffe://example.org/after-crash',
      audience: ['x'],
    });
    await verifyWithBundle(jwt.token, (await after.bundles.getBundle({})).bundle, 'x');
    await server.stop();
  });
});
