// `npm start`: a development trust domain on this machine. Starts a Tessera server on SQLite in
// .tessera/dev, registers an entry for the current user, mints an X.509-SVID with the CLI and
// shows it, then keeps serving until Ctrl-C and prints the next commands to try.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { run } from '../src/cli/program.ts';
import { loadServerConfig, TesseraServer } from '../src/server/compose.ts';

const root = path.resolve(import.meta.dirname, '..');
const dir = path.join(root, '.tessera/dev');
const dataDir = path.join(dir, 'server');
const svidDir = path.join(dir, 'svid');
const td = process.env.TESSERA_TRUST_DOMAIN || 'example.org';
mkdirSync(dataDir, { recursive: true, mode: 0o700 });

const config = loadServerConfig({
  trustDomain: td,
  dataDir,
  listen: '127.0.0.1:0',
  healthListen: '127.0.0.1:0',
});
const server = await TesseraServer.create(config, {
  logger: pino({ level: 'warn' }, pino.destination(2)),
});
const ac = new AbortController();
process.once('SIGINT', () => ac.abort());
process.once('SIGTERM', () => ac.abort());
let addrs: { api: string; admin: string; health: string } | undefined;
const serving = server.run(ac.signal, (a) => (addrs = a));
while (!addrs) await new Promise((r) => setTimeout(r, 10));

const env = { ...process.env, TESSERA_ADMIN_SOCKET: config.admin_socket };
const cli = async (...argv: string[]) => {
  const code = await run(argv, { stdout: process.stdout, stderr: process.stderr, env });
  if (code !== 0 && code !== 4) throw new Error(`tessera ${argv.join(' ')} exited ${code}`);
};
const user = os.userInfo();
const spiffeId = `spiffe://${td}/dev/${user.username.replace(/[^a-zA-Z0-9._-]/g, '-') || `uid-${user.uid}`}`;
const tessera = path.relative(process.cwd(), path.join(root, 'bin/tessera')) || 'bin/tessera';

console.log(`\nTessera server for trust domain ${td}`);
console.log(
  `  API (mTLS)   ${addrs.api}\n  admin socket ${addrs.admin}\n  health       http://${addrs.health}/readyz\n`,
);
console.log(`Registering ${spiffeId} for uid ${user.uid} (exit 4 means it already exists):`);
await cli(
  'entry',
  'create',
  '--spiffe-id',
  spiffeId,
  '--parent-id',
  `spiffe://${td}/spire/server`,
  '--selector',
  `unix:uid:${user.uid}`,
);
console.log(`\nMinting an X.509-SVID into ${path.relative(process.cwd(), svidDir)}:`);
await cli('x509', 'mint', '--spiffe-id', spiffeId, '--write', svidDir);
const svid = path.join(svidDir, 'svid.pem');
console.log(
  '\n' +
    execFileSync(
      'openssl',
      ['x509', '-in', svid, '-noout', '-subject', '-ext', 'subjectAltName', '-dates'],
      { encoding: 'utf8' },
    ),
);
process.stdout.write(
  execFileSync('openssl', ['verify', '-CAfile', path.join(svidDir, 'bundle.pem'), svid], {
    encoding: 'utf8',
  }),
);
console.log(`
Next, in another terminal:
  export TESSERA_ADMIN_SOCKET=${config.admin_socket}
  ${tessera} entry list
  ${tessera} jwt mint --spiffe-id ${spiffeId} --audience demo
  ${tessera} token generate
  ${tessera} bundle show --format spiffe
  ${tessera} audit verify
Ctrl-C stops the server; its state stays in ${path.relative(process.cwd(), dir)}.`);
await serving;
