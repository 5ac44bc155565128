// gRPC health and server reflection on the Workload API socket, driven by grpc-js clients loaded
// from the .proto files (no generated code), plus one call over the Connect protocol.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import * as grpc from '@grpc/grpc-js';
import { SpiffeWorkloadAPI } from '../../../proto/gen/spiffe/workload_pb.js';
import {
  TD,
  loadService,
  makePki,
  sleep,
  startOnTempSocket,
  type Pki,
  type Running,
} from './testing/fixtures.ts';

type Client = grpc.Client & Record<string, (...a: unknown[]) => unknown>;

interface ReflectionResponse {
  valid_host: string;
  message_response: string;
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_code: number; error_message: string };
}

/** One bidi reflection stream; ask() sends a request and waits for its answer. */
function reflectionStream(client: Client) {
  const call = (
    client['ServerReflectionInfo'] as () => grpc.ClientDuplexStream<unknown, ReflectionResponse>
  ).call(client);
  const answers: ReflectionResponse[] = [];
  let wake: (() => void) | undefined;
  call.on('data', (r: ReflectionResponse) => {
    answers.push(r);
    wake?.();
  });
  call.on('error', () => {});
  return {
    async ask(req: Record<string, unknown>): Promise<ReflectionResponse> {
      call.write({ host: 'localhost', ...req });
      const deadline = Date.now() + 5000;
      while (answers.length === 0 && Date.now() < deadline) {
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 100);
        });
      }
      const a = answers.shift();
      if (!a) throw new Error('no reflection answer');
      return a;
    },
    end: () => call.end(),
  };
}

const fileNames = (r: ReflectionResponse) =>
  (r.file_descriptor_response?.file_descriptor_proto ?? []).map(
    (b) => fromBinary(FileDescriptorProtoSchema, b).name,
  );

describe('gRPC health and reflection', () => {
  let pki: Pki;
  let run: Running;
  let health: Client;
  const addr = () => `unix://${run.socketPath}`;

  before(async () => {
    pki = await makePki(async (p) => [
      { selector: 'unix:uid:0', svid: await p.svid(`${TD}/a`, 'e1') },
    ]);
    run = await startOnTempSocket(pki.source);
    const Health = loadService('proto/grpc/health/v1/health.proto', 'grpc.health.v1.Health');
    health = new Health(addr(), grpc.credentials.createInsecure()) as Client;
  });
  after(async () => {
    health.close();
    await run.stop();
  });

  const check = (service: string) =>
    new Promise<{ status: string }>((resolve, reject) =>
      (
        health['Check'] as (
          r: unknown,
          cb: (e: Error | null, v: { status: string }) => void,
        ) => void
      ).call(health, { service }, (e, v) => (e ? reject(e) : resolve(v))),
    );

  it('Check: "" and SpiffeWorkloadAPI are SERVING (no security header needed); unknown is NOT_FOUND', async () => {
    assert.equal((await check('')).status, 'SERVING');
    assert.equal((await check('SpiffeWorkloadAPI')).status, 'SERVING');
    await assert.rejects(check('nope'), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
  });

  it('Watch: the current status at once; SERVICE_UNKNOWN for an unknown service', async () => {
    const watch = (service: string) =>
      new Promise<string>((resolve, reject) => {
        const call = (
          health['Watch'] as (r: unknown) => grpc.ClientReadableStream<{ status: string }>
        ).call(health, { service });
        call.on('data', (m: { status: string }) => {
          resolve(m.status);
          call.cancel();
        });
        call.on('error', (e: grpc.ServiceError) => e.code !== grpc.status.CANCELLED && reject(e));
      });
    assert.equal(await watch(''), 'SERVING');
    assert.equal(await watch('nope'), 'SERVICE_UNKNOWN');
  });

  it('reflection v1: list_services, file_containing_symbol (with imports once per stream), file_by_filename', async () => {
    const Reflection = loadService(
      'proto/grpc/reflection/v1/reflection.proto',
      'grpc.reflection.v1.ServerReflection',
    );
    const client = new Reflection(addr(), grpc.credentials.createInsecure()) as Client;
    const s = reflectionStream(client);
    const list = await s.ask({ list_services: '' });
    assert.equal(list.valid_host, 'localhost');
    assert.deepEqual(list.list_services_response?.service.map((x) => x.name).sort(), [
      'SpiffeWorkloadAPI',
      'grpc.health.v1.Health',
      'grpc.reflection.v1.ServerReflection',
      'grpc.reflection.v1alpha.ServerReflection',
    ]);
    const sym = await s.ask({ file_containing_symbol: 'SpiffeWorkloadAPI' });
    assert.deepEqual(fileNames(sym), ['spiffe/workload.proto', 'google/protobuf/struct.proto']);
    const workload = fromBinary(
      FileDescriptorProtoSchema,
      sym.file_descriptor_response?.file_descriptor_proto[0] as Buffer,
    );
    assert.equal(workload.package, '', 'package-less, as the spec requires');
    assert.deepEqual(
      workload.service[0]?.method.map((m) => m.name),
      [
        'FetchX509SVID',
        'FetchX509Bundles',
        'FetchJWTSVID',
        'FetchJWTBundles',
        'ValidateJWTSVID',
        'FetchWITSVID',
        'FetchWITBundles',
      ],
    );
    const again = await s.ask({ file_containing_symbol: 'SpiffeWorkloadAPI.FetchX509SVID' });
    assert.deepEqual(
      fileNames(again),
      ['spiffe/workload.proto'],
      'imports already sent are not resent',
    );
    const msg = await s.ask({ file_containing_symbol: 'X509SVIDResponse' });
    assert.deepEqual(fileNames(msg), ['spiffe/workload.proto']);
    const byName = await s.ask({ file_by_filename: 'google/protobuf/struct.proto' });
    assert.deepEqual(fileNames(byName), ['google/protobuf/struct.proto']);
    const missing = await s.ask({ file_containing_symbol: 'no.Such' });
    assert.equal(missing.error_response?.error_code, grpc.status.NOT_FOUND);
    s.end();
    client.close();
  });

  it('reflection v1alpha answers too', async () => {
    const Reflection = loadService(
      'proto/grpc/reflection/v1alpha/reflection.proto',
      'grpc.reflection.v1alpha.ServerReflection',
    );
    const client = new Reflection(addr(), grpc.credentials.createInsecure()) as Client;
    const s = reflectionStream(client);
    const list = await s.ask({ list_services: '' });
    assert.ok(list.list_services_response?.service.some((x) => x.name === 'SpiffeWorkloadAPI'));
    const byName = await s.ask({ file_by_filename: 'spiffe/workload.proto' });
    assert.deepEqual(fileNames(byName), ['spiffe/workload.proto', 'google/protobuf/struct.proto']);
    s.end();
    client.close();
  });

  it('the Connect protocol works on the same socket (our own generated client)', async () => {
    const transport = createConnectTransport({
      baseUrl: 'http://localhost',
      httpVersion: '2',
      nodeOptions: { createConnection: () => net.connect(run.socketPath) },
    });
    const client = createClient(SpiffeWorkloadAPI, transport);
    const r = await client.fetchJWTSVID(
      { audience: ['x'] },
      { headers: { 'workload.spiffe.io': 'true' } },
    );
    assert.deepEqual(
      r.svids.map((s) => s.spiffeId),
      [`${TD}/a`],
    );
  });
});

describe('health at shutdown', () => {
  it('a Watch hears NOT_SERVING before the server goes away', async () => {
    const pki = await makePki(async () => []);
    const run = await startOnTempSocket(pki.source);
    const Health = loadService('proto/grpc/health/v1/health.proto', 'grpc.health.v1.Health');
    const health = new Health(
      `unix://${run.socketPath}`,
      grpc.credentials.createInsecure(),
    ) as Client;
    const seen: string[] = [];
    const call = (
      health['Watch'] as (r: unknown) => grpc.ClientReadableStream<{ status: string }>
    ).call(health, { service: '' });
    call.on('data', (m: { status: string }) => seen.push(m.status));
    call.on('error', () => {});
    while (seen.length === 0) await sleep(10);
    await run.stop();
    const deadline = Date.now() + 2000;
    while (seen.length < 2 && Date.now() < deadline) await sleep(10);
    assert.deepEqual(seen, ['SERVING', 'NOT_SERVING']);
    health.close();
  });
});
