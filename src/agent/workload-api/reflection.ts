// gRPC server reflection (v1 and v1alpha; the endpoint spec says servers SHOULD support it), so
// that grpcurl and friends can discover SpiffeWorkloadAPI without a local copy of the proto.
// Answers list_services, file_by_filename and file_containing_symbol from the descriptors
// compiled into the generated code; extensions do not exist here, so those requests get
// NOT_FOUND.
import { toBinary, type DescFile } from '@bufbuild/protobuf';
import { nestedTypes } from '@bufbuild/protobuf/reflect';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import type { ServiceImpl } from '@connectrpc/connect';
import type * as v1 from '../../../proto/gen/grpc/reflection/v1/reflection_pb.js';
import type * as v1alpha from '../../../proto/gen/grpc/reflection/v1alpha/reflection_pb.js';

const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;

/** The fields v1 and v1alpha share, minus the type tag: one answer function serves both. */
type Request = {
  readonly host: string;
  readonly messageRequest:
    | {
        case:
          'fileByFilename' | 'fileContainingSymbol' | 'allExtensionNumbersOfType' | 'listServices';
        value: string;
      }
    | { case: 'fileContainingExtension'; value: unknown }
    | { case: undefined; value?: undefined };
};
/** Plain init objects (no type tags), valid for the v1 and the v1alpha response alike. */
type Answer =
  | { case: 'fileDescriptorResponse'; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: 'allExtensionNumbersResponse'; value: { baseTypeName: string } }
  | { case: 'listServicesResponse'; value: { service: { name: string }[] } }
  | { case: 'errorResponse'; value: { errorCode: number; errorMessage: string } };

export interface ReflectionIndex {
  readonly services: readonly string[];
  readonly files: ReadonlyMap<string, DescFile>;
  /** Fully-qualified symbol (message, enum, service, method, extension) → declaring file. */
  readonly symbols: ReadonlyMap<string, DescFile>;
}

/** Indexes `files` and all their imports. */
export function reflectionIndex(
  files: readonly DescFile[],
  services: readonly string[],
): ReflectionIndex {
  const byName = new Map<string, DescFile>();
  const symbols = new Map<string, DescFile>();
  const visit = (f: DescFile) => {
    if (byName.has(f.name + '.proto')) return;
    byName.set(f.name + '.proto', f);
    for (const t of nestedTypes(f)) {
      symbols.set(t.typeName, f);
      if (t.kind === 'service')
        for (const m of t.methods) symbols.set(`${t.typeName}.${m.name}`, f);
    }
    f.dependencies.forEach(visit);
  };
  files.forEach(visit);
  return { services, files: byName, symbols };
}

/**
 * The answer to one request. `sent` holds the files already sent on this stream: like grpc-go,
 * the requested file is always sent, its imports only once per stream.
 */
export function answer(index: ReflectionIndex, req: Request, sent: Set<string>): Answer {
  const r = req.messageRequest;
  switch (r.case) {
    case 'listServices':
      return {
        case: 'listServicesResponse',
        value: { service: index.services.map((name) => ({ name })) },
      };
    case 'fileByFilename':
      return filesAnswer(index.files.get(r.value), sent, `file "${r.value}" not found`);
    case 'fileContainingSymbol':
      return filesAnswer(index.symbols.get(r.value), sent, `symbol "${r.value}" not found`);
    case 'fileContainingExtension':
      return errorAnswer(NOT_FOUND, 'extension not found');
    case 'allExtensionNumbersOfType':
      return index.symbols.has(r.value)
        ? { case: 'allExtensionNumbersResponse', value: { baseTypeName: r.value } }
        : errorAnswer(NOT_FOUND, `type "${r.value}" not found`);
    default:
      return errorAnswer(INVALID_ARGUMENT, 'no request set');
  }
}

function filesAnswer(file: DescFile | undefined, sent: Set<string>, notFound: string): Answer {
  if (!file) return errorAnswer(NOT_FOUND, notFound);
  const out: Uint8Array[] = [];
  const seenNow = new Set<string>();
  const queue = [file];
  for (let f = queue.shift(); f; f = queue.shift()) {
    if (seenNow.has(f.name)) continue;
    seenNow.add(f.name);
    if (out.length === 0 || !sent.has(f.name)) {
      sent.add(f.name);
      out.push(toBinary(FileDescriptorProtoSchema, f.proto));
    }
    queue.push(...f.dependencies);
  }
  return {
    case: 'fileDescriptorResponse',
    value: { fileDescriptorProto: out },
  };
}

function errorAnswer(errorCode: number, errorMessage: string): Answer {
  return { case: 'errorResponse', value: { errorCode, errorMessage } };
}

/** Reflection requests per stream are bounded so one client cannot loop us forever. */
const MAX_REQUESTS_PER_STREAM = 10_000;

export function reflectionV1(index: ReflectionIndex): ServiceImpl<typeof v1.ServerReflection> {
  return { serverReflectionInfo: (requests) => reflectionStream(index, requests) };
}

/** v1alpha is field-for-field v1 (only the package differs); older clients still use it. */
export function reflectionV1alpha(
  index: ReflectionIndex,
): ServiceImpl<typeof v1alpha.ServerReflection> {
  return { serverReflectionInfo: (requests) => reflectionStream(index, requests) };
}

async function* reflectionStream<R extends Request>(
  index: ReflectionIndex,
  requests: AsyncIterable<R>,
): AsyncGenerator<{ validHost: string; originalRequest: R; messageResponse: Answer }> {
  const sent = new Set<string>();
  let n = 0;
  for await (const req of requests) {
    if (++n > MAX_REQUESTS_PER_STREAM) return;
    yield { validHost: req.host, originalRequest: req, messageResponse: answer(index, req, sent) };
  }
}
