// Built-in node attestors (server halves), listed explicitly: no discovery.
export { createJoinTokenAttestor, JOIN_TOKEN_TYPE } from './join-token/server.ts';
export { createX509PopAttestor, X509POP_TYPE } from './x509pop/server.ts';
export type { NodeAttestor, NodeAttestation, ChallengeFn } from './node-attestor.ts';
