// The server API's agent service (descriptor, requests, responses),
// as clients such as the CLI use them; generated from proto/tessera/v1/agent.proto. One file per
// service, so a command loads only the services it calls.
export * from '../../../proto/gen/tessera/v1/agent_pb.js';
