// The messages the server API's services share (entries, bundles, selectors, nodes, statuses),
// as clients such as the CLI use them; generated from proto/tessera/v1/types.proto. One file per
// service, so a command loads only the services it calls.
export * from '../../../proto/gen/tessera/v1/types_pb.js';
