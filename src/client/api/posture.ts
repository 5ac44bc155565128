// The server API's posture service (descriptor, requests, responses), as clients such as the CLI
// use them; generated from proto/tessera/v1/posture.proto.
export * from '../../../proto/gen/tessera/v1/posture_pb.js';
