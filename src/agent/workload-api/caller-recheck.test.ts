// An open FetchX509SVID stream follows its caller while it runs (caller-updates.ts): this test
// process maps a library (koffi: dlopen), which the selectors here depend on; the open stream
// sends the new SVID set, or ends with PermissionDenied "no identity issued" when nothing is
// left, and sends the old set again once the library is unmapped. On both routes: the gRPC fast
// path and connect-node.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import koffi from 'koffi';
import type { Selector } from '../../core/selector.ts';
import { PROBE, probeLibrary, type ProbeLibrary } from '../attestation/testing/probe-library.ts';
import {
  TD,
  makePki,
  openStream,
  staticAttestation,
  startOnTempSocket,
  workloadClient,
  type GrpcClient,
  type Pki,
  type Running,
} from './testing/fixtures.ts';

interface X509SvidMsg {
  svids: { spiffe_id: string }[];
}

const ids = (m: X509SvidMsg) => m.svids.map((s) => s.spiffe_id).sort();

/** `lib:probe` while the process maps the probe library, `lib:none` otherwise; and its uid. */
function selectorsOf(c: { pid: number; uid: number }): Selector[] {
  const mapped = readFileSync(`/proc/${c.pid}/maps`, 'latin1').includes(`/${PROBE}`);
  return [
    { type: 'unix', value: `uid:${c.uid}` },
    { type: 'lib', value: mapped ? 'probe' : 'none' },
  ];
}

for (const fastPaths of [true, false]) {
  describe(`an open X.509-SVID stream follows its caller (${fastPaths ? 'gRPC fast path' : 'connect-node'})`, () => {
    let pki: Pki;
    let run: Running;
    let client: GrpcClient;
    let probe: ProbeLibrary | undefined;
    const uid = process.getuid?.() ?? 0;

    before(async () => {
      probe = probeLibrary();
      pki = await makePki(async (p) => [
        { selector: `unix:uid:${uid}`, svid: await p.svid(`${TD}/plain`, 'e1') },
        { selector: 'lib:none', svid: await p.svid(`${TD}/clean`, 'e2') },
      ]);
      pki.source.selectorsOf = selectorsOf;
      run = await startOnTempSocket(pki.source, {
        fastPaths,
        attestation: staticAttestation(pki.source, { recheckMs: 50 }),
      });
      client = workloadClient(run.socketPath);
    });

    after(async () => {
      client?.close();
      await run?.stop();
      probe?.remove();
    });

    /** Maps the probe while `fn` runs. */
    async function mapped(fn: () => Promise<void>): Promise<void> {
      const lib = koffi.load(probe!.path) as unknown as { unload(): void };
      try {
        await fn();
      } finally {
        lib.unload();
      }
    }

    it('sends the new SVID set when the process maps a library, the old one when it unmaps it', async (t) => {
      if (!probe) return t.skip('no libz to map on this machine');
      const s = openStream<X509SvidMsg>(client, 'FetchX509SVID');
      try {
        assert.deepEqual(ids(await s.next()), [`${TD}/clean`, `${TD}/plain`]);
        await mapped(async () => {
          assert.deepEqual(ids(await s.next()), [`${TD}/plain`]);
        });
        assert.deepEqual(ids(await s.next()), [`${TD}/clean`, `${TD}/plain`]);
      } finally {
        s.call.cancel();
      }
    });

    it('ends with PermissionDenied "no identity issued" when no SVID is left', async (t) => {
      if (!probe) return t.skip('no libz to map on this machine');
      const entries = pki.source.state.entries;
      pki.source.update((st) => ({
        ...st,
        entries: st.entries.filter((e) => e.selector === 'lib:none'),
      }));
      try {
        const s = openStream<X509SvidMsg>(client, 'FetchX509SVID');
        assert.deepEqual(ids(await s.next()), [`${TD}/clean`]);
        await mapped(async () => {
          const e = await s.ended;
          assert.equal(e?.code, status.PERMISSION_DENIED);
          assert.match(e?.details ?? '', /^no identity issued$/);
        });
      } finally {
        pki.source.update((st) => ({ ...st, entries }));
      }
    });
  });
}
