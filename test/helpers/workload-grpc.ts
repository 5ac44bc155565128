// A plain gRPC client for the SPIFFE Workload API, generated at run time from the .proto only
// (grpc-js + proto-loader): none of Tessera's client code, as an independent SPIFFE client.
import path from 'node:path';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { REPO } from './server-process.ts';

const definition = protoLoader.loadSync(path.join(REPO, 'proto/spiffe/workload.proto'), {
  keepCase: true,
  longs: String,
  defaults: true,
  includeDirs: [path.join(REPO, 'proto')],
});
const loaded = grpc.loadPackageDefinition(definition) as unknown as {
  SpiffeWorkloadAPI: grpc.ServiceClientConstructor;
};

export type WorkloadClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

/** `ownConnection`: a connection of its own (grpc-js otherwise shares one per target). */
export function workloadClient(socketPath: string, ownConnection = false): WorkloadClient {
  const options = ownConnection ? { 'grpc.use_local_subchannel_pool': 1 } : {};
  return new loaded.SpiffeWorkloadAPI(
    `unix://${socketPath}`,
    grpc.credentials.createInsecure(),
    options,
  ) as unknown as WorkloadClient;
}

export function header(): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set('workload.spiffe.io', 'true');
  return md;
}

export interface X509Response {
  svids: {
    spiffe_id: string;
    x509_svid: Buffer;
    x509_svid_key: Buffer;
    bundle: Buffer;
    hint: string;
  }[];
  federated_bundles: Record<string, Buffer>;
}

/** Opens FetchX509SVID and returns an iterator of messages plus a cancel function. */
export function fetchX509(client: WorkloadClient, md = header()) {
  const call = (
    client.FetchX509SVID as (
      req: object,
      md: grpc.Metadata,
    ) => grpc.ClientReadableStream<X509Response>
  )({}, md);
  const queue: X509Response[] = [];
  const waiters: ((v: X509Response | Error) => void)[] = [];
  let failure: Error | null = null;
  call.on('data', (m: X509Response) =>
    (waiters.shift() ?? ((x) => queue.push(x as X509Response)))(m),
  );
  call.on('error', (e: Error) => {
    failure = e;
    for (const w of waiters.splice(0)) w(e);
  });
  return {
    /** Next message within `ms`. */
    async next(ms = 10_000): Promise<X509Response> {
      const q = queue.shift();
      if (q) return q;
      if (failure) throw failure;
      return new Promise((resolve, reject) => {
        const t = setTimeout(
          () => reject(new Error(`no FetchX509SVID message within ${ms} ms`)),
          ms,
        );
        waiters.push((v) => {
          clearTimeout(t);
          if (v instanceof Error) reject(v);
          else resolve(v);
        });
      });
    },
    cancel: () => call.cancel(),
  };
}

export function unary<T>(
  client: WorkloadClient,
  method: string,
  req: object,
  md = header(),
): Promise<T> {
  return new Promise((resolve, reject) =>
    (client[method] as (r: object, m: grpc.Metadata, cb: (e: Error | null, v: T) => void) => void)(
      req,
      md,
      (e, v) => (e ? reject(e) : resolve(v)),
    ),
  );
}
