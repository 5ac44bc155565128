// `tessera proxy ca show` reads the CA certificate the agent's explicit proxy created.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ProxyCa, PROXY_CA_CERT_FILE as AGENT_FILE } from '../../agent/proxy/http/proxy-ca.ts';
import { PROXY_CA_CERT_FILE } from './proxy.ts';
import { runCli } from '../testing/harness.ts';

test('tessera proxy ca show prints the proxy CA certificate, or says there is none yet', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tessera-proxy-ca-'));
  try {
    const none = await runCli(['proxy', 'ca', 'show', '--data-dir', dir]);
    assert.equal(none.code, 7);
    assert.match(
      none.stderr,
      /no proxy CA in .* yet: the agent creates it when its explicit proxy starts/,
    );
    assert.equal(PROXY_CA_CERT_FILE, AGENT_FILE);
    const ca = await ProxyCa.open(dir, { now: () => Date.now() });
    const shown = await runCli(['proxy', 'ca', 'show'], { TESSERA_AGENT_DATA_DIR: dir });
    assert.equal(shown.code, 0);
    assert.equal(shown.stdout, ca.certPem);
    assert.doesNotMatch(shown.stdout, /PRIVATE KEY/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
