// AWS-shaped instance identity evidence made with the real openssl: a DSA "AWS" certificate and
// PKCS#7 signatures like IMDS serves at /latest/dynamic/instance-identity/pkcs7 (SignedData with
// the document attached, no certificates, SHA-1 + DSA), base64 without the PEM armour.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface AwsSigner {
  readonly dir: string;
  readonly certPem: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export function makeAwsSigner(name = 'aws', o: { days?: number } = {}): AwsSigner {
  const dir = mkdtempSync(path.join(os.tmpdir(), `tessera-${name}-`));
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('dsaparam', '-genkey', '-out', 'key.pem', '1024');
  run(
    'req',
    '-x509',
    '-new',
    '-key',
    'key.pem',
    '-sha256',
    '-days',
    String(o.days ?? 30),
    '-subj',
    `/C=US/ST=Washington State/L=Seattle/O=${name} Test Services LLC`,
    '-out',
    'cert.pem',
  );
  const certFile = path.join(dir, 'cert.pem');
  return {
    dir,
    certPem: readFileSync(certFile, 'utf8'),
    certFile,
    keyFile: path.join(dir, 'key.pem'),
  };
}

export function identityDocument(o: Partial<Record<string, string>> = {}): string {
  return JSON.stringify(
    {
      accountId: '111122223333',
      architecture: 'x86_64',
      availabilityZone: 'us-west-2b',
      billingProducts: null,
      devpayProductCodes: null,
      marketplaceProductCodes: null,
      imageId: 'ami-5fb8c835',
      instanceId: 'i-1234567890abcdef0',
      instanceType: 't2.micro',
      kernelId: null,
      pendingTime: '2016-11-19T16:32:11Z',
      privateIp: '10.158.112.84',
      ramdiskId: null,
      region: 'us-west-2',
      version: '2017-09-30',
      ...o,
    },
    null,
    2,
  );
}

/** The PKCS#7 as IMDS serves it: base64 lines, no armour. */
export function signIid(
  document: string,
  signers: readonly AwsSigner[],
  o: { md?: string; certs?: boolean; extraCertFile?: string } = {},
): string {
  const dir = signers[0]!.dir;
  const doc = path.join(dir, `doc-${process.hrtime.bigint()}.json`);
  writeFileSync(doc, document);
  const args = ['smime', '-sign', '-binary', '-nodetach', '-md', o.md ?? 'sha1', '-in', doc];
  for (const s of signers) args.push('-signer', s.certFile, '-inkey', s.keyFile);
  if (!o.certs) args.push('-nocerts');
  if (o.extraCertFile) args.push('-certfile', o.extraCertFile);
  args.push('-outform', 'PEM');
  const pem = execFileSync('openssl', args, { encoding: 'utf8' });
  return pem.replace(/-----[A-Z0-9 ]+-----/g, '').trim();
}
