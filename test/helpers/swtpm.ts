// A software TPM for tpm attestation tests: Debian's swtpm, manufactured by swtpm_setup with an
// RSA EK and an EK certificate from a throw-away local CA (swtpm_localca), served on TCP for the
// tpm2-tools `swtpm` TCTI. Tests skip (saying why) only when the binaries are absent; CI installs
// them (.ci/run).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitFor } from './ports.ts';

const TOOLS = ['swtpm', 'swtpm_setup', 'swtpm_localca', 'tpm2_createek', 'tpm2_activatecredential'];

/** Why tpm tests cannot run here, or null when they can. */
export function swtpmMissing(): string | null {
  const missing = TOOLS.filter(
    (t) => !['/usr/bin', '/usr/local/bin'].some((d) => existsSync(path.join(d, t))),
  );
  return missing.length === 0
    ? null
    : `needs ${missing.join(', ')} (apt-get install swtpm swtpm-tools tpm2-tools)`;
}

export interface Swtpm {
  readonly dir: string;
  /** TPM2TOOLS_TCTI for this TPM. */
  readonly tcti: string;
  /** PEM of the local CA's root and issuer: the "manufacturer" CAs. */
  readonly caBundleFile: string;
  stop(): Promise<void>;
}

/** Manufactures a TPM (EK + EK certificate) and serves it; `dir` may be shared by several. */
export async function startSwtpm(parent = os.tmpdir()): Promise<Swtpm> {
  const dir = mkdtempSync(path.join(parent, 'tessera-swtpm-'));
  const state = path.join(dir, 'state');
  const ca = path.join(dir, 'ca');
  mkdirSync(state);
  mkdirSync(ca);
  const f = (name: string, text: string) => {
    writeFileSync(path.join(dir, name), text);
    return path.join(dir, name);
  };
  const caConf = f(
    'localca.conf',
    `statedir = ${ca}\nsigningkey = ${ca}/signkey.pem\nissuercert = ${ca}/issuercert.pem\ncertserial = ${ca}/certserial\n`,
  );
  const caOpts = f(
    'localca.options',
    '--platform-manufacturer Tessera\n--platform-version 2.1\n--platform-model test\n',
  );
  const setup = f(
    'swtpm_setup.conf',
    `create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = ${caConf}\ncreate_certs_tool_options = ${caOpts}\nactive_pcr_banks = sha256\n`,
  );
  execFileSync(
    'swtpm_setup',
    ['--tpm2', '--tpmstate', state, '--create-ek-cert', '--config', setup, '--overwrite'],
    { stdio: 'pipe', env: { ...process.env, XDG_CONFIG_HOME: dir } },
  );
  const caBundleFile = f(
    'manufacturer-cas.pem',
    readFileSync(path.join(ca, 'swtpm-localca-rootca-cert.pem'), 'utf8') +
      readFileSync(path.join(ca, 'issuercert.pem'), 'utf8'),
  );
  // The swtpm TCTI finds the control channel on the next port.
  const port = await freePort();
  const ctrl = port + 1;
  const proc: ChildProcess = spawn(
    'swtpm',
    [
      ...['socket', '--tpm2', '--tpmstate', `dir=${state}`],
      ...['--server', `type=tcp,port=${port},bindaddr=127.0.0.1`],
      ...['--ctrl', `type=tcp,port=${ctrl},bindaddr=127.0.0.1`],
      ...['--flags', 'not-need-init,startup-clear'],
    ],
    { stdio: 'ignore' },
  );
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      }),
    30_000,
  );
  return {
    dir,
    tcti: `swtpm:host=127.0.0.1,port=${port}`,
    caBundleFile,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const gone = new Promise<void>((r) => proc.once('exit', () => r()));
        proc.kill('SIGTERM');
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
