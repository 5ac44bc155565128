// Tessera's workload-side SDK: the Workload API client, X.509 and JWT sources that follow
// rotation, SPIFFE mTLS for node:tls / https / http2, and JWT-SVID verification. See docs/sdk.md.
export { defaultEndpoint, ENDPOINT_ENV, parseEndpoint, resolveEndpoint } from './endpoint.ts';
export type { EndpointOptions, WorkloadEndpoint } from './endpoint.ts';
export { Backoff, defaultSleep } from './backoff.ts';
export type { BackoffOptions, Sleep } from './backoff.ts';
export { isRetryable, toWorkloadError, WorkloadResponseError } from './errors.ts';
export { SECURITY_HEADER, WorkloadClient } from './workload-client.ts';
export type { CallOptions, JwtSvidParams, WorkloadClientOptions } from './workload-client.ts';
export { CredentialDenied } from './credential.ts';
export type {
  CredentialParams,
  WorkloadCredential,
  WorkloadCredentialValue,
} from './credential.ts';
export { parseJwks, splitDer } from './parse.ts';
export type * from './types.ts';
export { pickByHint, X509Source } from './x509-source.ts';
export type { X509SourceOptions, X509SvidPicker } from './x509-source.ts';
export { JwtSource } from './jwt-source.ts';
export type { JwtSourceOptions } from './jwt-source.ts';
export type { WatcherOptions } from './watcher.ts';
export { bundleSet, StaticX509Source, x509SvidFromDer } from './static-source.ts';
export {
  authorizeAny,
  authorizeId,
  authorizeIf,
  authorizeMemberOf,
  authorizeOneOf,
} from './authorizer.ts';
export type { Authorizer } from './authorizer.ts';
export {
  connectMtls,
  createMtlsServer,
  followRotation,
  guardClientSocket,
  guardServer,
  peerChainDer,
  peerSpiffeId,
  secureContextFor,
  tlsClientOptions,
  tlsServerOptions,
  verifyPeer,
  verifyTlsPeer,
} from './tls.ts';
export type { MtlsOptions, MtlsSource } from './tls.ts';
export {
  connectMtlsHttp2,
  createMtlsHttp2Server,
  createMtlsHttpsServer,
  guardHttp2Server,
  httpsAgent,
  requestPeer,
} from './https.ts';
export type { MtlsRequestHandler } from './https.ts';
export { JwtSvidVerifier, staticJwtBundles } from './jwt-verifier.ts';
export type { JwksDocument, JwtSvidVerifierOptions, VerifiedJwtSvid } from './jwt-verifier.ts';
export { bearerToken, jwtSvidMiddleware, spiffeOf } from './http-middleware.ts';
export type { JwtMiddlewareOptions, Next, SpiffeCaller, SpiffeRequest } from './http-middleware.ts';
