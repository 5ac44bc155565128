// The server API's audit service (descriptor, requests, responses),
// as clients such as the CLI use them; generated from proto/tessera/v1/audit.proto. One file per
// service, so a command loads only the services it calls.
export * from '../../../proto/gen/tessera/v1/audit_pb.js';
