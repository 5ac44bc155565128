// `npm start`: a development trust domain on this machine, in one process. A Tessera server on
// SQLite and an agent attested with a fresh join token, state in .tessera/dev; an entry for the
// current user (`unix:uid` selector); then the SVID the agent serves to this very process is
// fetched over the Workload API, shown and verified with OpenSSL. Runs until Ctrl-C.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { TesseraAgent, loadAgentConfig } from '../src/agent/compose.ts';
import { WorkloadClient } from '../src/client/workload/index.ts';
import { run } from '../src/cli/program.ts';
import { derToPem } from '../src/crypto/x509/pem.ts';
import { loadServerConfig, TesseraServer } from '../src/server/compose/server.ts';

const root = path.resolve(import.meta.dirname, '..');
const dir = path.join(root, '.tessera/dev');
const td = process.env.TESSERA_TRUST_DOMAIN || 'example.org';
const logger = pino({ level: 'warn' }, pino.destination(2));
const ac = new AbortController();
process.once('SIGINT', () => ac.abort());
process.once('SIGTERM', () => ac.abort());

// 1. The server.
const serverConfig = loadServerConfig({
  trustDomain: td,
  dataDir: path.join(dir, 'server'),
  listen: '127.0.0.1:0',
  healthListen: '',
});
const server = await TesseraServer.create(serverConfig, { logger });
let api = '';
const serving = server.run(ac.signal, (a) => (api = a.api));
while (!api) await new Promise((r) => setTimeout(r, 10));
const env = { ...process.env, TESSERA_ADMIN_SOCKET: serverConfig.admin_socket };
const cli = async (...argv: string[]): Promise<string> => {
  let out = '';
  const code = await run(argv, {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: () => true },
    env,
  });
  if (code !== 0 && code !== 4) throw new Error(`tessera ${argv.join(' ')} exited ${code}`);
  return out;
};

// 2. The agent, attested with a join token (a fresh one each start: tokens work once).
// A restarted dev domain attests a new agent: its old identity belonged to a spent token.
rmSync(path.join(dir, 'agent'), { recursive: true, force: true });
const publicDir = path.join(dir, 'public');
mkdirSync(publicDir, { recursive: true });
chmodSync(publicDir, 0o755);
const bundleFile = path.join(dir, 'bootstrap-bundle.pem');
writeFileSync(bundleFile, await cli('bundle', 'show', '--format', 'pem'));
const token = (await cli('token', 'generate', '--output', 'json')).trim();
const { token: joinToken, agentSpiffeId } = JSON.parse(token) as {
  token: string;
  agentSpiffeId: string;
};
const agentConfig = loadAgentConfig({
  server: api,
  trustDomain: td,
  socket: path.join(publicDir, 'api.sock'),
  dataDir: path.join(dir, 'agent'),
  joinToken,
  trustBundle: bundleFile,
});
const agent = await TesseraAgent.create(agentConfig, { logger });
let socket = '';
const agentRunning = agent.run(ac.signal, (s) => (socket = s));
while (!socket) await new Promise((r) => setTimeout(r, 10));

// 3. An entry for whoever runs this, then the SVID the agent gives this process.
const user = os.userInfo();
const name = user.username.replace(/[^a-zA-Z0-9._-]/g, '-') || `uid-${user.uid}`;
const spiffeId = `spiffe://${td}/dev/${name}`;
await cli(
  'entry',
  'create',
  '--spiffe-id',
  spiffeId,
  '--parent-id',
  agentSpiffeId,
  '--selector',
  `unix:uid:${user.uid}`,
);
const client = new WorkloadClient({ address: `unix://${socket}` });
let ctx = null;
for (let i = 0; i < 100 && !ctx; i++) {
  ctx = await client.fetchX509Context({ timeoutMs: 2000 }).catch(() => null);
  if (!ctx) await new Promise((r) => setTimeout(r, 100));
}
client.close();
if (!ctx) throw new Error('the agent did not serve an SVID in time');
const svid = ctx.svids[0]!;
const svidDir = path.join(dir, 'svid');
mkdirSync(svidDir, { recursive: true });
writeFileSync(path.join(svidDir, 'svid.pem'), svid.chainDer.map((d) => derToPem(d)).join(''));
writeFileSync(
  path.join(svidDir, 'bundle.pem'),
  (ctx.bundles.get(td) ?? []).map((d) => derToPem(d)).join(''),
);
const show = (...args: string[]) => execFileSync('openssl', args, { encoding: 'utf8' });

console.log(`
Tessera dev trust domain "${td}" is running (state in ${path.relative(process.cwd(), dir) || dir}).
  server API     ${api}
  admin socket   ${serverConfig.admin_socket}
  agent          ${agentSpiffeId}
  Workload API   ${socket}

The agent served this process (uid ${user.uid}) its X.509-SVID:
${show('x509', '-in', path.join(svidDir, 'svid.pem'), '-noout', '-subject', '-ext', 'subjectAltName', '-dates').trimEnd()}
${show('verify', '-CAfile', path.join(svidDir, 'bundle.pem'), path.join(svidDir, 'svid.pem')).trimEnd()}

Next, in another terminal:
  export SPIFFE_ENDPOINT_SOCKET=unix://${socket}
  export TESSERA_ADMIN_SOCKET=${serverConfig.admin_socket}
  bin/tessera svid fetch
  bin/tessera jwt fetch --audience demo
  bin/tessera svid watch
  bin/tessera entry list
Ctrl-C stops both.`);
await Promise.all([serving, agentRunning]);
