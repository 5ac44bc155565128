// The server API's secret service (descriptor, requests, responses), as clients such as the CLI
// use them; generated from proto/tessera/v1/secret.proto. One file per service, so a command
// loads only the services it calls.
export * from '../../../proto/gen/tessera/v1/secret_pb.js';
