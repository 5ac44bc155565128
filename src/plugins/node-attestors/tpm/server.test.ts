// The tpm attestor against a real software TPM (swtpm + tpm2-tools): the server's TypeScript
// MakeCredential must be what tpm2_activatecredential accepts.
import assert from 'node:assert/strict';
import { X509Certificate, createHash, createHmac, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type Swtpm, startSwtpm, swtpmMissing } from '../../../../test/helpers/swtpm.ts';
import type { AgentNodeAttestor, ChallengeFn, NodeAttestor } from '../node-attestor.ts';
import { trimDer } from './ek-cert.ts';
import { kdfa } from './make-credential.ts';
import { encodeTpmPayload, parseTpmPayload } from './payload.ts';
import { tpmPlugin } from './plugin.ts';

const skip = swtpmMissing();
const deps = { now: () => Date.now(), joinTokens: { consume: async () => null } };
const never: ChallengeFn = async () => assert.fail('must not challenge');

describe('tpm attestor with swtpm', { skip: skip ?? false }, () => {
  let a: Swtpm;
  let b: Swtpm;
  let server: NodeAttestor;
  let agentA: AgentNodeAttestor;
  let agentB: AgentNodeAttestor;

  before(async () => {
    [a, b] = await Promise.all([startSwtpm(), startSwtpm()]);
    server = tpmPlugin.createServer({ ek_ca_bundle_file: a.caBundleFile }, deps);
    agentA = await tpmPlugin.createAgent(tpmPlugin.agentSchema.parse({ tcti: a.tcti }));
    agentB = await tpmPlugin.createAgent(tpmPlugin.agentSchema.parse({ tcti: b.tcti }));
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
  });

  it('admits a TPM whose EK certificate chains to the manufacturer CA, by credential activation', async () => {
    const payload = await agentA.payload();
    const r = await server.attest(payload, async (c) => agentA.answer(c));
    const p = parseTpmPayload(payload);
    const der = trimDer(p.ekCert);
    const hash = createHash('sha256')
      .update(new X509Certificate(der).publicKey.export({ format: 'der', type: 'spki' }))
      .digest('hex');
    assert.deepEqual(r.idSegments, [hash]);
    assert.equal(r.canReattest, true);
    const values = r.selectors.map((s) => `${s.type}:${s.value}`);
    assert.equal(values[0], `tpm:pub_hash:${hash}`);
    for (const v of ['tpm:ek_cert:manufacturer:id:00001014', 'tpm:ek_cert:model:swtpm'])
      assert.ok(values.includes(v), `${v} in ${values.join(' ')}`);
    assert.ok(values.some((v) => /^tpm:ca:fingerprint:[0-9a-f]{40}$/.test(v)));
  });

  it('attests the same TPM again with a fresh AK and the same agent ID', async () => {
    const one = await server.attest(await agentA.payload(), async (c) => agentA.answer(c));
    const two = await server.attest(await agentA.payload(), async (c) => agentA.answer(c));
    assert.deepEqual(one.idSegments, two.idSegments);
  });

  it('refuses a replayed answer and an answer that is not the secret', async () => {
    let old: Uint8Array = new Uint8Array();
    await server.attest(await agentA.payload(), async (c) => (old = await agentA.answer(c)));
    const message =
      'tpm: credential activation failed: the answer is not the secret made for the AK';
    await assert.rejects(
      server.attest(await agentA.payload(), async () => old),
      {
        name: 'PermissionDeniedError',
        message,
      },
    );
    await assert.rejects(
      server.attest(await agentA.payload(), async () => randomBytes(32)),
      {
        message,
      },
    );
  });

  it('refuses a TPM whose EK certificate is from another manufacturer CA', async () => {
    await assert.rejects(
      server.attest(await agentB.payload(), async (c) => agentB.answer(c)),
      {
        name: 'PermissionDeniedError',
        message: 'tpm: the EK certificate does not chain to a manufacturer CA',
      },
    );
  });

  it("refuses an EK certificate presented with another TPM's keys", async () => {
    const good = parseTpmPayload(await agentA.payload());
    const other = parseTpmPayload(await agentB.payload());
    const mixed = encodeTpmPayload({ ...other, ekCert: good.ekCert });
    await assert.rejects(server.attest(mixed, never), {
      message: 'tpm: the EK certificate does not certify the presented EK',
    });
  });

  it('refuses an AK that is not a restricted signing key, before any challenge', async () => {
    const p = parseTpmPayload(await agentA.payload());
    const akPub = Buffer.from(p.akPub);
    // TPMT_PUBLIC: size(2) type(2) nameAlg(2) attributes(4): clear "restricted" (bit 16).
    akPub.writeUInt32BE(akPub.readUInt32BE(6) & ~(1 << 16), 6);
    await assert.rejects(server.attest(encodeTpmPayload({ ...p, akPub }), never), {
      message: 'tpm: the attestation key must be a restricted signing key fixed to the TPM',
    });
  });

  it('refuses malformed payloads with the field named', async () => {
    const enc = (v: unknown) => Buffer.from(JSON.stringify(v));
    await assert.rejects(server.attest(Buffer.from('{'), never), {
      message: 'tpm: payload is not valid JSON',
    });
    await assert.rejects(server.attest(enc({ ek_cert: 'AA==' }), never), {
      message: 'tpm: payload ek_pub must be base64 of at most 1024 bytes',
    });
    await assert.rejects(
      server.attest(enc({ ek_cert: 'AA==', ek_pub: 'AAE=', ak_pub: 'AA==' }), never),
      { message: 'tpm: ek_pub is truncated' },
    );
  });
});

describe('tpm KDFa', () => {
  it('is counter-mode HMAC-SHA-256 over the null-terminated label and the bit length', () => {
    const key = Buffer.alloc(32, 7);
    const out = kdfa(key, 'STORAGE', Buffer.from('name'), Buffer.alloc(0), 128);
    const expect = createHmac('sha256', key)
      .update(Buffer.from([0, 0, 0, 1]))
      .update(Buffer.from('STORAGE\0'))
      .update(Buffer.from('name'))
      .update(Buffer.from([0, 0, 0, 128]))
      .digest()
      .subarray(0, 16);
    assert.deepEqual(out, expect);
    assert.equal(kdfa(key, 'INTEGRITY', Buffer.alloc(0), Buffer.alloc(0), 512).length, 64);
  });
});
