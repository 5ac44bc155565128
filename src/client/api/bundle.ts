// The server API's bundle service (descriptor, requests, responses),
// as clients such as the CLI use them; generated from proto/tessera/v1/bundle.proto. One file per
// service, so a command loads only the services it calls.
export * from '../../../proto/gen/tessera/v1/bundle_pb.js';
