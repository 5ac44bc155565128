// Signing-path benchmark: X.509-SVID minting from CSRs (parse + verify CSR + issue) and JWT-SVID
// signing, each as a ratio to raw crypto.sign on the same key type (P-256), measured in this run.
// Run: ./node_modules/.bin/node bench/crypto.bench.ts [ms-per-measurement]
import 'reflect-metadata';
import { generateKeyPairSync, sign, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { signJwtSvidSync } from '../src/crypto/jwt/sign.ts';
import { MemoryKeyManager } from '../src/crypto/keys/memory-key-manager.ts';
import { createSelfSignedCa } from '../src/crypto/x509/ca.ts';
import { createCsr } from '../src/crypto/x509/csr-create.ts';
import { parseCsr, parseCsrAsync } from '../src/crypto/x509/csr.ts';
import { issueX509SvidSync } from '../src/crypto/x509/leaf.ts';
import { measure, measureAsync, ratio } from './lib.ts';

const ms = Number(process.argv[2] ?? 2000);
const keys = new MemoryKeyManager();
const caKey = await keys.generate('bench-ca', 'ec-p256');
const jwtKey = await keys.generate('bench-jwt', 'ec-p256');
const now = Date.now();
const ca = await createSelfSignedCa({
  key: caKey,
  trustDomain: 'example.org',
  notBefore: now,
  notAfter: now + 86_400_000,
});

// Distinct CSRs (fresh keys), as agents send: no cache can make the CSR checks cheaper.
const csrs = Array.from({ length: 512 }, (_, i) =>
  createCsr(
    generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
    `spiffe://example.org/w/${i}`,
  ),
);
let next = 0;
const nextCsr = (): Uint8Array => csrs[next++ % csrs.length] as Uint8Array;

const mint = (csr: { publicKeyDer: Uint8Array }, i: number) =>
  issueX509SvidSync({
    ca: { certDer: ca.der, key: caKey },
    subjectPublicKey: csr.publicKeyDer,
    spiffeId: `spiffe://example.org/w/${i}`,
    notBefore: now - 10_000,
    notAfter: now + 3_600_000,
  });

// The baseline signs a TBSCertificate-sized message with the same kind of key.
const tbsSized = Buffer.alloc(450, 7);
const caPrivate = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const rawSign = measure(
  'raw crypto.sign (P-256, sync)',
  () => sign('sha256', tbsSized, caPrivate),
  ms,
);

const x509Rate = measure(
  'issueX509Svid from CSR (sync, verify incl.)',
  () => mint(parseCsr(nextCsr()), next),
  ms,
);
ratio('x509-svid from CSR / raw sign', x509Rate, rawSign, 0.25);

const x509Async = await measureAsync(
  'issueX509Svid from CSR (parseCsrAsync, 16 in flight)',
  async () => mint(await parseCsrAsync(nextCsr()), next),
  ms,
  16,
);
ratio('x509-svid from CSR, concurrent / raw sign', x509Async, rawSign);

const claims = {
  sub: 'spiffe://example.org/w',
  aud: ['svc'],
  exp: 2_000_000_000,
  iat: 1_900_000_000,
};
const jwtRate = measure(
  'signJwtSvid (sync)',
  () => signJwtSvidSync({ key: jwtKey, kid: 'k1', claims }),
  ms,
);
ratio('jwt-svid / raw sign', jwtRate, rawSign, 0.5);

await peculiarReference();

/** Why the hot path does not use @peculiar/x509: the same leaf built with it, for the record. */
async function peculiarReference(): Promise<void> {
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const caKeys = await webcrypto.subtle.generateKey(alg, false, ['sign', 'verify']);
  const leafKeys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const rate = await measureAsync(
    '@peculiar/x509 leaf (no CSR; reference)',
    () =>
      x509.X509CertificateGenerator.create({
        serialNumber: '01',
        subject: 'O=Tessera',
        issuer: 'O=Tessera',
        notBefore: new Date(now),
        notAfter: new Date(now + 3_600_000),
        signingAlgorithm: alg,
        publicKey: leafKeys.publicKey,
        signingKey: caKeys.privateKey,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.SubjectAlternativeNameExtension([
            { type: 'url', value: 'spiffe://example.org/w' },
          ]),
        ],
      }),
    Math.min(ms, 1000),
  );
  ratio('@peculiar/x509 leaf / raw sign', rate, rawSign);
}
