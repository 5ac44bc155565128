// Drives N GetCredential calls at an agent's socket (25 connections, 32 in flight), checking
// every answer; for counting the agent's instructions per call under callgrind (load-proof).
// Usage: node bench/drive-credentials.ts <socket> <calls>   (NO_CHECK=1: for the floor's constant)
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const [socket, n] = [process.argv[2]!, Number(process.argv[3] ?? 1000)];
const REPO = path.resolve(import.meta.dirname, '..');
const def = protoLoader.loadSync(path.join(REPO, 'proto/tessera/access/v1/credentials.proto'), {
  keepCase: true,
  defaults: true,
  oneofs: true,
});
const Credentials = (
  grpc.loadPackageDefinition(def) as unknown as {
    tessera: { access: { v1: { Credentials: grpc.ServiceClientConstructor } } };
  }
).tessera.access.v1.Credentials;
type Client = grpc.Client & {
  GetCredential: (
    req: object,
    md: grpc.Metadata,
    cb: (e: grpc.ServiceError | null, r: { token?: string }) => void,
  ) => void;
};
const clients = Array.from(
  { length: 25 },
  () =>
    new Credentials(`unix://${socket}`, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
    }) as unknown as Client,
);
const md = new grpc.Metadata();
md.set('workload.spiffe.io', 'true');
let k = 0;
const one = () =>
  new Promise<void>((resolve, reject) =>
    clients[k++ % clients.length]!.GetCredential({ server_workload: 'db' }, md, (e, r) =>
      e
        ? reject(e)
        : r.token || process.env['NO_CHECK']
          ? resolve()
          : reject(new Error('no token')),
    ),
  );
let left = n;
await Promise.all(
  Array.from({ length: 32 }, async () => {
    while (left-- > 0) await one();
  }),
);
for (const c of clients) c.close();
console.log(`${n} calls`);
