import assert from 'node:assert/strict';
import {
  type KeyObject,
  X509Certificate,
  createHash,
  createPublicKey,
  generateKeyPairSync,
} from 'node:crypto';
import { before, describe, it } from 'node:test';
import { localKey } from '../../../crypto/keys/local-key.ts';
import type { ManagedKey } from '../../../crypto/key-manager.ts';
import { createIntermediateCa, createSelfSignedCa } from '../../../crypto/x509/ca.ts';
import { issueX509Svid } from '../../../crypto/x509/leaf.ts';
import type { DistinguishedName } from '../../../crypto/x509/name.ts';
import type { ChallengeFn, NodeAttestor } from '../node-attestor.ts';
import { answerX509PopChallenge, x509PopPayload } from './agent.ts';
import { X509POP_CONTEXT, encodeX509PopPayload, parseX509PopPayload } from './payload.ts';
import { X509POP_TYPE, createX509PopAttestor } from './server.ts';

const HOUR = 3_600_000;
const NOW = Date.UTC(2030, 0, 1);

interface Ca {
  priv: KeyObject;
  key: ManagedKey;
  der: Uint8Array;
  x509: X509Certificate;
}

function ecPriv(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
}

async function selfSignedCa(name: string, notBefore = NOW - HOUR, notAfter = NOW + 24 * HOUR) {
  const priv = ecPriv();
  const key = localKey(name, priv);
  const ca = await createSelfSignedCa({ key, trustDomain: 'example.org', notBefore, notAfter });
  return { priv, key, der: ca.der, x509: new X509Certificate(Buffer.from(ca.der)) };
}

async function intermediateCa(name: string, upstream: Ca): Promise<Ca> {
  const priv = ecPriv();
  const key = localKey(name, priv);
  const ca = await createIntermediateCa({
    key,
    trustDomain: 'example.org',
    notBefore: NOW - HOUR,
    notAfter: NOW + 12 * HOUR,
    upstream: { certChainDer: [upstream.der], key: upstream.priv },
  });
  return { priv, key, der: ca.der, x509: new X509Certificate(Buffer.from(ca.der)) };
}

interface Agent {
  priv: KeyObject;
  der: Uint8Array;
  x509: X509Certificate;
}

async function agentCert(
  issuer: Ca,
  o: { notBefore?: number; notAfter?: number; dns?: string[] } = {},
): Promise<Agent> {
  const priv = ecPriv();
  const leaf = await issueX509Svid({
    ca: { certDer: issuer.der, key: issuer.key },
    subjectPublicKey: createPublicKey(priv),
    spiffeId: 'spiffe://example.org/node',
    dnsNames: o.dns ?? ['node1.example.org'],
    notBefore: o.notBefore ?? NOW - HOUR,
    notAfter: o.notAfter ?? NOW + HOUR,
  });
  return { priv, der: leaf.der, x509: new X509Certificate(Buffer.from(leaf.der)) };
}

const sha1 = (der: Uint8Array) => createHash('sha1').update(der).digest('hex');
const signWith =
  (priv: KeyObject): ChallengeFn =>
  async (nonce) =>
    answerX509PopChallenge(priv, nonce);

let root: Ca;
let otherRoot: Ca;
let inter: Ca;
let attestor: NodeAttestor;

before(async () => {
  root = await selfSignedCa('root');
  otherRoot = await selfSignedCa('other');
  inter = await intermediateCa('inter', root);
  attestor = createX509PopAttestor({ roots: [root.x509], now: () => NOW });
});

async function denied(
  payload: Uint8Array,
  challenge: ChallengeFn,
  message: string,
  a: NodeAttestor = attestor,
): Promise<void> {
  await assert.rejects(a.attest(payload, challenge), { name: 'PermissionDeniedError', message });
}

describe('x509pop attestor: success', () => {
  it('admits a certificate issued by a trusted CA whose key signs the nonce', async () => {
    const agent = await agentCert(root);
    const nonces: Uint8Array[] = [];
    const result = await attestor.attest(x509PopPayload([agent.der]), async (nonce) => {
      nonces.push(nonce);
      return answerX509PopChallenge(agent.priv, nonce);
    });
    assert.equal(attestor.type, X509POP_TYPE);
    assert.equal(nonces.length, 1);
    assert.equal(nonces[0]?.length, 32);
    assert.deepEqual(result, {
      idSegments: [sha1(agent.der)],
      selectors: [
        { type: 'x509pop', value: 'subject:cn:node1.example.org' },
        { type: 'x509pop', value: `serialnumber:${agent.x509.serialNumber.toLowerCase()}` },
        { type: 'x509pop', value: `ca:fingerprint:${sha1(root.der)}` },
      ],
      canReattest: true,
    });
  });

  it('uses a fresh nonce on every attestation', async () => {
    const agent = await agentCert(root);
    const seen = new Set<string>();
    for (let i = 0; i < 3; i++) {
      await attestor.attest(x509PopPayload([agent.der]), async (nonce) => {
        seen.add(Buffer.from(nonce).toString('hex'));
        return answerX509PopChallenge(agent.priv, nonce);
      });
    }
    assert.equal(seen.size, 3);
  });

  it('follows an intermediate presented in the payload and lists every CA fingerprint', async () => {
    const agent = await agentCert(inter);
    const result = await attestor.attest(
      x509PopPayload([agent.der, inter.der]),
      signWith(agent.priv),
    );
    assert.deepEqual(
      result.selectors.filter((s) => s.value.startsWith('ca:')).map((s) => s.value),
      [`ca:fingerprint:${sha1(inter.der)}`, `ca:fingerprint:${sha1(root.der)}`],
    );
  });

  it('omits the CN selector when the certificate has no CN', async () => {
    const agent = await agentCert(root, { dns: [] });
    const result = await attestor.attest(x509PopPayload([agent.der]), signWith(agent.priv));
    assert.ok(!result.selectors.some((s) => s.value.startsWith('subject:cn:')));
  });
});

describe('x509pop attestor: denials', () => {
  it('denies a signature made with another key', async () => {
    const agent = await agentCert(root);
    await denied(
      x509PopPayload([agent.der]),
      signWith(ecPriv()),
      'x509pop: challenge signature does not verify with the certificate key',
    );
  });

  it('denies a signature over the bare nonce (no domain separation) or garbage', async () => {
    const agent = await agentCert(root);
    const { sign } = await import('node:crypto');
    await denied(
      x509PopPayload([agent.der]),
      async (nonce) => sign('sha256', nonce, agent.priv),
      'x509pop: challenge signature does not verify with the certificate key',
    );
    await denied(
      x509PopPayload([agent.der]),
      async () => new Uint8Array([1, 2, 3]),
      'x509pop: challenge signature does not verify with the certificate key',
    );
    assert.equal(X509POP_CONTEXT, 'tessera x509pop challenge v1\n');
  });

  it('denies an expired certificate, and one not yet valid, before challenging', async () => {
    const expired = await agentCert(root, { notBefore: NOW - 2 * HOUR, notAfter: NOW - HOUR });
    const future = await agentCert(root, { notBefore: NOW + HOUR, notAfter: NOW + 2 * HOUR });
    const neverAsk: ChallengeFn = async () => assert.fail('must not challenge');
    for (const c of [expired, future]) {
      await denied(
        x509PopPayload([c.der]),
        neverAsk,
        `x509pop: certificate ${c.x509.serialNumber} is outside its validity period`,
      );
    }
  });

  it('denies a certificate once the trusted CA itself has expired', async () => {
    const shortRoot = await selfSignedCa('short', NOW - 2 * HOUR, NOW + HOUR);
    const agent = await agentCert(shortRoot, { notAfter: NOW + HOUR });
    const a = createX509PopAttestor({ roots: [shortRoot.x509], now: () => NOW + HOUR + 1000 });
    await denied(
      x509PopPayload([agent.der]),
      signWith(agent.priv),
      `x509pop: certificate ${agent.x509.serialNumber} is outside its validity period`,
      a,
    );
  });

  it('denies a certificate from another CA, even with that CA in the payload', async () => {
    const stranger = await agentCert(otherRoot);
    for (const chain of [[stranger.der], [stranger.der, otherRoot.der]]) {
      await denied(
        x509PopPayload(chain),
        signWith(stranger.priv),
        'x509pop: certificate does not chain to a trusted CA',
      );
    }
  });

  it('denies a leaf of an intermediate that is not presented', async () => {
    const agent = await agentCert(inter);
    await denied(
      x509PopPayload([agent.der]),
      signWith(agent.priv),
      'x509pop: certificate does not chain to a trusted CA',
    );
  });

  it("denies a certificate from a CA that copies the trusted CA's name", async () => {
    const subject: DistinguishedName = [
      ['C', 'US'],
      ['O', 'Agents CA'],
    ];
    const mk = async (ref: string) => {
      const priv = ecPriv();
      const key = localKey(ref, priv);
      const der = (
        await createSelfSignedCa({
          key,
          trustDomain: 'example.org',
          notBefore: NOW - HOUR,
          notAfter: NOW + HOUR,
          subject,
        })
      ).der;
      return { priv, key, der, x509: new X509Certificate(Buffer.from(der)) };
    };
    const trusted = await mk('trusted');
    const lookalike = await mk('lookalike');
    assert.equal(trusted.x509.subject, lookalike.x509.subject);
    const agent = await agentCert(lookalike);
    assert.equal(agent.x509.issuer, trusted.x509.subject);
    const a = createX509PopAttestor({ roots: [trusted.x509], now: () => NOW });
    await denied(
      x509PopPayload([agent.der]),
      signWith(agent.priv),
      'x509pop: certificate does not chain to a trusted CA',
      a,
    );
    // The genuine one is admitted.
    const good = await agentCert(trusted);
    await a.attest(x509PopPayload([good.der]), signWith(good.priv));
  });

  it('denies a chain through a certificate that is not a CA', async () => {
    const middle = await agentCert(root);
    const priv = ecPriv();
    const leaf = await issueX509Svid({
      ca: { certDer: middle.der, key: localKey('middle', middle.priv) },
      subjectPublicKey: createPublicKey(priv),
      spiffeId: 'spiffe://example.org/sub',
      notBefore: NOW - HOUR,
      notAfter: NOW + HOUR,
    });
    await denied(
      x509PopPayload([leaf.der, middle.der]),
      signWith(priv),
      'x509pop: certificate does not chain to a trusted CA',
    );
  });

  it('denies malformed payloads', async () => {
    const never: ChallengeFn = async () => assert.fail('must not challenge');
    const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    await denied(new TextEncoder().encode('{'), never, 'x509pop: payload is not valid JSON');
    for (const doc of [{}, { certificates: [] }, { certificates: 'x' }, null, [], 5]) {
      await denied(enc(doc), never, 'x509pop: payload must list 1..8 certificates');
    }
    await denied(
      enc({ certificates: Array(9).fill('AA==') }),
      never,
      'x509pop: payload must list 1..8 certificates',
    );
    await denied(
      enc({ certificates: [42] }),
      never,
      'x509pop: certificates must be base64 strings',
    );
    await denied(
      enc({ certificates: ['bm90IGEgY2VydA=='] }),
      never,
      'x509pop: a certificate in the payload could not be parsed',
    );
  });

  it('refuses to start without trusted CAs', () => {
    assert.throws(() => createX509PopAttestor({ roots: [], now: () => NOW }), {
      name: 'InvalidArgumentError',
      message: 'x509pop: ca_bundle_file holds no certificates',
    });
  });
});

describe('x509pop payload encoding', () => {
  it('round-trips a chain as base64 DER, leaf first', () => {
    const chain = [new Uint8Array([1, 2, 3]), new Uint8Array([255, 0])];
    const payload = encodeX509PopPayload(chain);
    assert.deepEqual(JSON.parse(Buffer.from(payload).toString()), {
      certificates: ['AQID', '/wA='],
    });
    assert.deepEqual(
      parseX509PopPayload(payload).map((b) => [...b]),
      chain.map((c) => [...c]),
    );
  });
});
