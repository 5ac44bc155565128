// Black-box: `tessera svid watch --write` against a real server and agent process, with short
// SVID TTLs so that rotations happen during the test. What is on disk is checked with OpenSSL:
// the serial changes, the key always matches the certificate, the chain verifies; the --exec
// command runs once per write and never overlaps; --signal reaches a real child process;
// --jwt-file holds a JWT-SVID that is refreshed.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { derToPem } from '../src/crypto/x509/pem.ts';
import { makeCa } from '../src/crypto/x509/testing/ca.ts';
import { adminClients, entry } from './helpers/admin.ts';
import { startAgent, type AgentProcess } from './helpers/agent-process.ts';
import { startCli } from './helpers/cli-process.ts';
import { waitFor } from './helpers/ports.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';

const UID = process.getuid?.() ?? 0;
const ID = 'spiffe://example.org/files';
const PARTNER = 'partner.test';
/** Generous: the machine is shared; rotations come every ~3 s with these TTLs. */
const DEADLINE_MS = 120_000;

const lines = (file: string): string[] =>
  existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
/** OpenSSL and node print serials differently (case, leading zeros). */
const serial = (s: string): string =>
  s
    .replace(/^serial=/i, '')
    .toUpperCase()
    .replace(/^0+/, '');

describe('svid watch --write', () => {
  let server: ServerProcess;
  let agent: AgentProcess;
  let partnerPem: string;
  const tmp = (p: string) => mkdtempSync(path.join(os.tmpdir(), p));

  before(async () => {
    server = await startServer();
    const admin = adminClients(server.adminSocket);
    const partner = await makeCa('ec-p256', PARTNER);
    partnerPem = derToPem(partner.certDer);
    await admin.bundles.setFederatedBundle({ trustDomain: PARTNER, bundle: partnerPem });
    const t = await admin.agents.createJoinToken({});
    agent = await startAgent(server, { joinToken: t.token });
    await admin.entries.batchCreateEntry({
      entries: [
        entry(ID, t.agentSpiffeId, [`unix:uid:${UID}`], {
          x509SvidTtl: 6,
          jwtSvidTtl: 6,
          federatesWith: [PARTNER],
        }),
      ],
    });
  });
  after(async () => {
    await agent?.stop();
    await server?.stop();
  });

  it('keeps the files current across rotations and runs --exec once per write, never overlapping', async () => {
    const dir = path.join(tmp('tessera-svid-out-'), 'svid');
    const scratch = tmp('tessera-svid-exec-');
    const runs = path.join(scratch, 'runs.log');
    // Run by the watch after each write: records the serial on disk, whether the key matches
    // the certificate, the key's mode, and whether another run was in progress.
    const cmd = [
      `mkdir ${scratch}/lock 2>/dev/null || echo OVERLAP >> ${runs}`,
      `openssl x509 -in ${dir}/svid.pem -noout -pubkey > ${scratch}/cert.pub`,
      `openssl pkey -in ${dir}/svid.key -pubout > ${scratch}/key.pub`,
      `if cmp -s ${scratch}/cert.pub ${scratch}/key.pub; then m=match; else m=MISMATCH; fi`,
      `echo "$(openssl x509 -in ${dir}/svid.pem -noout -serial) $m $(stat -c %a ${dir}/svid.key)" >> ${runs}`,
      `rmdir ${scratch}/lock`,
    ].join('; ');
    const w = startCli([
      'svid',
      'watch',
      '--socket',
      agent.socketPath,
      '--write',
      dir,
      '--exec',
      cmd,
      '--output',
      'json',
    ]);
    try {
      await waitFor(() => lines(runs).length >= 3, DEADLINE_MS, 200);
    } catch {
      assert.fail(
        `3 runs not seen\nruns: ${lines(runs).join('\n')}\nstdout: ${w.stdout()}\nstderr: ${w.stderr()}`,
      );
    }
    assert.equal(await w.stop('SIGTERM'), 0, w.stderr());

    const events = w
      .stdout()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; svids: { serialNumber: string }[] });
    const ran = lines(runs);
    assert.ok(!ran.includes('OVERLAP'), 'no two runs at once');
    // One run per write; SIGTERM may have ended the last run before it recorded anything.
    assert.ok(
      ran.length === events.length || ran.length === events.length - 1,
      `${ran.length} runs for ${events.length} writes`,
    );
    const onDisk = ran.map((l) => l.split(' '));
    assert.deepEqual(
      onDisk.map(([s]) => serial(s ?? '')),
      events.slice(0, ran.length).map((e) => serial(e.svids[0]?.serialNumber ?? '')),
      'each run saw the SVID of its own write',
    );
    for (const [, match, mode] of onDisk) {
      assert.equal(match, 'match', 'the key matches the certificate');
      assert.equal(mode, '600');
    }
    assert.ok(new Set(onDisk.map(([s]) => s)).size >= 3, 'the serial changed on disk (rotations)');
    assert.equal(events[0]?.event, 'initial');
    assert.match(w.stderr(), /exec: `mkdir .*` exited with status 0/);

    const verify = spawnSync(
      'openssl',
      ['verify', '-CAfile', `${dir}/bundle.pem`, `${dir}/svid.pem`],
      { encoding: 'utf8' },
    );
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
    assert.equal(readFileSync(path.join(dir, `federated-${PARTNER}.pem`), 'utf8'), partnerPem);
    assert.equal(statSync(path.join(dir, 'svid.key')).mode & 0o777, 0o600);
  });

  it('sends --signal to the pid in --pid-file after each write, and keeps --jwt-file fresh', async () => {
    const dir = path.join(tmp('tessera-svid-out-'), 'svid');
    const scratch = tmp('tessera-svid-sig-');
    const pidFile = path.join(scratch, 'app.pid');
    const hups = path.join(scratch, 'hups.log');
    const jwtFile = path.join(scratch, 'token.jwt');
    // A real program that reloads on SIGHUP: it records each one.
    const app: ChildProcess = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('node:fs');
         process.on('SIGHUP', () => fs.appendFileSync(${JSON.stringify(hups)}, 'hup\\n'));
         fs.writeFileSync(${JSON.stringify(pidFile)}, String(process.pid));
         setInterval(() => {}, 1000);`,
      ],
      { stdio: 'ignore' },
    );
    try {
      await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8') !== '', DEADLINE_MS);
      const w = startCli([
        'svid',
        'watch',
        '--socket',
        agent.socketPath,
        '--write',
        dir,
        '--signal',
        'HUP',
        '--pid-file',
        pidFile,
        '--jwt-audience',
        'db',
        '--jwt-file',
        jwtFile,
      ]);
      const tokens = new Set<string>();
      try {
        await waitFor(
          () => {
            if (existsSync(jwtFile)) tokens.add(readFileSync(jwtFile, 'utf8'));
            return lines(hups).length >= 2 && tokens.size >= 2;
          },
          DEADLINE_MS,
          200,
        );
      } catch {
        assert.fail(
          `2 signals and 2 tokens not seen (${lines(hups).length}, ${tokens.size})\nstdout: ${w.stdout()}\nstderr: ${w.stderr()}`,
        );
      }
      assert.equal(await w.stop('SIGINT'), 0, w.stderr());
      assert.match(w.stderr(), new RegExp(`signal: sent SIGHUP to pid ${app.pid}`));
      assert.equal(statSync(jwtFile).mode & 0o777, 0o600);
      for (const t of tokens) {
        const claims = JSON.parse(
          Buffer.from(t.trim().split('.')[1] ?? '', 'base64url').toString(),
        ) as {
          sub: string;
          aud: string | string[];
        };
        assert.equal(claims.sub, ID);
        assert.deepEqual([claims.aud].flat(), ['db']);
      }
      assert.ok(existsSync(path.join(dir, 'svid.pem')));
    } finally {
      app.kill('SIGKILL');
    }
  });

  it('refuses bad flag combinations, naming the flag', async () => {
    for (const [args, message] of [
      [['--exec', 'true'], /error: --exec needs --write/],
      [['--write', '/tmp/x', '--signal', 'HUP'], /error: --signal and --pid-file go together/],
      [
        ['--write', '/tmp/x', '--signal', 'NOPE', '--pid-file', '/tmp/p'],
        /error: --signal: "NOPE" is not a signal name/,
      ],
      [
        ['--write', '/tmp/x', '--exec', 'true', '--signal', 'HUP', '--pid-file', '/tmp/p'],
        /error: --exec cannot be combined with --signal/,
      ],
      [['--jwt-file', '/tmp/t'], /error: --jwt-audience and --jwt-file go together/],
    ] as const) {
      const w = startCli(['svid', 'watch', '--socket', agent.socketPath, ...args]);
      assert.equal(await w.exited(), 2, w.stderr());
      assert.match(w.stderr(), message);
    }
  });
});
