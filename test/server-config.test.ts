// `tessera server run` configuration at the process boundary: bad config is refused with the key
// path and a non-zero exit; an upstream CA makes the server an intermediate under it.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { createCsr } from '../src/crypto/x509/csr-create.ts';
import { derToPem } from '../src/crypto/x509/pem.ts';
import { adminClients } from './helpers/admin.ts';
import { opensslVerify } from './helpers/openssl.ts';
import { CLI, startServer, type ServerProcess } from './helpers/server-process.ts';
import { newKey } from './helpers/stand-in-agent.ts';

function runServer(args: string[]) {
  return spawnSync(process.execPath, [CLI, 'server', 'run', ...args], {
    encoding: 'utf8',
    timeout: 20_000,
  });
}

describe('server configuration', () => {
  const started: ServerProcess[] = [];
  after(async () => {
    for (const s of started) await s.stop();
  });

  it('refuses an unknown config key, naming it, and stores nothing', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-cfg-'));
    const file = path.join(dir, 'server.yaml');
    writeFileSync(
      file,
      `trust_domain: example.org\ndata_dir: ${dir}/data\nca:\n  ttl: 24h\n  colour: blue\n`,
    );
    const r = runServer(['--config', file]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /config: ca: unknown key "colour"/);
    assert.equal(spawnSync('ls', [path.join(dir, 'data')]).status, 2, 'no data dir was created');
  });

  it('refuses an invalid trust domain flag and a bad duration', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-cfg-'));
    let r = runServer(['--trust-domain', 'Example.org', '--data-dir', dir]);
    assert.equal(r.status, 2);
    assert.match(
      r.stderr,
      /config: trust_domain: invalid trust domain "Example.org": the trust domain must be lowercase/,
    );
    const file = path.join(dir, 'server.yaml');
    writeFileSync(file, 'trust_domain: example.org\ndefault_x509_svid_ttl: soon\n');
    r = runServer(['--config', file, '--data-dir', dir]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /config: default_x509_svid_ttl: invalid duration "soon"/);
  });

  it('runs as an intermediate CA under an upstream CA loaded from files', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-upstream-'));
    const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    ossl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'root.sec1');
    ossl('pkcs8', '-topk8', '-nocrypt', '-in', 'root.sec1', '-out', 'root.key');
    ossl(
      'req',
      '-x509',
      '-new',
      '-key',
      'root.key',
      '-subj',
      '/O=Upstream/CN=Upstream Root',
      '-days',
      '30',
      '-out',
      'root.pem',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    );
    const server = await startServer({
      config: {
        ca: {
          upstream_cert_file: path.join(dir, 'root.pem'),
          upstream_key_file: path.join(dir, 'root.key'),
        },
      },
    });
    started.push(server);
    const admin = adminClients(server.adminSocket);
    const bundle = (await admin.bundles.getBundle({})).bundle!;
    const rootPem = execFileSync('cat', [path.join(dir, 'root.pem')], { encoding: 'utf8' });
    assert.equal(bundle.x509Authorities.length, 1);
    assert.equal(
      derToPem(bundle.x509Authorities[0]!).replace(/\s/g, ''),
      rootPem.replace(/\s/g, ''),
    );
    const minted = await admin.svids.mintX509SVID({
      spiffeId: 'spiffe://example.org/app',
      csr: createCsr(newKey()),
    });
    assert.equal(minted.svidChain.length, 2, 'leaf + intermediate');
    const v = opensslVerify(rootPem, minted.svidChain.map((d) => derToPem(d)).join(''));
    assert.equal(v.ok, true, v.output);
  });
});
