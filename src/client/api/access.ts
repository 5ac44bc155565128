// The server API's access-model services (server workloads, credential providers, access
// policies), as clients such as the CLI use them; generated from proto/tessera/v1/access.proto.
export * from '../../../proto/gen/tessera/v1/access_pb.js';
