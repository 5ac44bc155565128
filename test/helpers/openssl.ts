// OpenSSL as an independent verifier and certificate factory.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function opensslVerify(caPem: string, certPem: string): { ok: boolean; output: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-ossl-'));
  const ca = path.join(dir, 'ca.pem');
  const leaf = path.join(dir, 'leaf.pem');
  writeFileSync(ca, caPem);
  // Leaf first; anything after it is an untrusted intermediate.
  const blocks =
    certPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
  writeFileSync(leaf, blocks[0] ?? '');
  const args = ['verify', '-CAfile', ca];
  if (blocks.length > 1) {
    const chain = path.join(dir, 'chain.pem');
    writeFileSync(chain, blocks.slice(1).join(''));
    args.push('-untrusted', chain);
  }
  const r = spawnSync('openssl', [...args, leaf], { encoding: 'utf8' });
  return { ok: r.status === 0, output: r.stdout + r.stderr };
}

export function opensslText(certPem: string): string {
  return execFileSync('openssl', ['x509', '-noout', '-text'], { input: certPem, encoding: 'utf8' });
}

/** A CA and a leaf certificate signed by it (for x509pop agents). */
export function makeX509PopCerts(
  dir: string,
  cn: string,
): { caPem: string; caFile: string; certPem: string; keyPem: string } {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key');
  run(
    'req',
    '-x509',
    '-new',
    '-key',
    'ca.key',
    '-subj',
    '/CN=x509pop test CA',
    '-days',
    '2',
    '-out',
    'ca.pem',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'agent.key');
  run('req', '-new', '-key', 'agent.key', '-subj', `/CN=${cn}`, '-out', 'agent.csr');
  writeFileSync(
    path.join(dir, 'ext.cnf'),
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n',
  );
  run(
    'x509',
    '-req',
    '-in',
    'agent.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    'ext.cnf',
    '-out',
    'agent.pem',
  );
  const read = (f: string) => execFileSync('cat', [path.join(dir, f)], { encoding: 'utf8' });
  // openssl writes SEC1 keys; convert to PKCS#8 for node.
  const keyPem = execFileSync(
    'openssl',
    ['pkcs8', '-topk8', '-nocrypt', '-in', path.join(dir, 'agent.key')],
    { encoding: 'utf8' },
  );
  return {
    caPem: read('ca.pem'),
    caFile: path.join(dir, 'ca.pem'),
    certPem: read('agent.pem'),
    keyPem,
  };
}
