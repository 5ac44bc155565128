// AWS container credentials (the ECS / EKS Pod Identity protocol) for
// AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:PORT/aws/container-credentials/<name>: the
// path names the server workload, `Authorization` must carry the token of the caller's uid
// (container-tokens.ts; AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE), and the answer is
// `{AccessKeyId, SecretAccessKey, Token, Expiration}` released for the attested caller. Errors
// are `{Code, Message}` JSON, which the SDK reports. Requests carrying `X-Forwarded-For` are
// refused (403).
import { isTesseraError } from '../../../core/errors.ts';
import type { CloudEndpoint, CloudResponse } from '../cloud-endpoint.ts';
import type { ContainerTokens } from './container-tokens.ts';
import { awsValue, containerDocument, containerError } from './documents.ts';
import { AWS_MIN_VALIDITY_MS } from './imds-endpoint.ts';

export const CONTAINER_PREFIX = '/aws/container-credentials/';

const json = (status: number, body: string): CloudResponse => ({
  status,
  headers: { 'content-type': 'application/json' },
  body,
});

export function awsContainerEndpoint(tokens: ContainerTokens): CloudEndpoint {
  return {
    name: 'aws-container',
    prefixes: [CONTAINER_PREFIX],
    async handle(req, ctx) {
      const name = req.path.slice(CONTAINER_PREFIX.length).replace(/\/$/, '');
      const refuse = (status: number, code: string, message: string) => {
        ctx.log.warn(
          { endpoint: 'aws-container', server: name.slice(0, 64), status, code },
          `AWS container credentials request refused: ${message}`,
        );
        return json(status, containerError(code, message));
      };
      if (req.headers['x-forwarded-for'] !== undefined) {
        return refuse(403, 'AccessDenied', 'the request carries X-Forwarded-For');
      }
      if (req.method !== 'GET') return refuse(405, 'MethodNotAllowed', 'use GET');
      const auth = req.headers['authorization'];
      const early = tokens.check(auth, -1);
      if (early === 'none-configured') {
        return refuse(
          401,
          'Unauthorized',
          'no container authorization token is configured (cloud.aws_container_token_files)',
        );
      }
      if (early === 'missing' || early === 'wrong') {
        return refuse(
          401,
          'Unauthorized',
          early === 'missing' ? 'no Authorization header' : 'the Authorization token is not valid',
        );
      }
      try {
        const caller = await req.caller();
        if (tokens.check(auth, caller.process.uid) !== 'ok') {
          return refuse(
            401,
            'Unauthorized',
            `the Authorization token is not the one of uid ${caller.process.uid}`,
          );
        }
        const served = await ctx.credentials.get(
          caller,
          { server: name, spiffeId: '' },
          req.signal,
          {
            minValidityMs: AWS_MIN_VALIDITY_MS,
          },
        );
        const v = awsValue(served.credential);
        if (!v)
          return refuse(
            404,
            'NotFound',
            `server workload "${name}" does not release AWS credentials`,
          );
        return json(200, containerDocument(v));
      } catch (e) {
        if (!isTesseraError(e)) throw e;
        if (e.code === 'invalid_argument') return refuse(400, 'InvalidArgument', e.message);
        if (e.code === 'permission_denied') return refuse(403, 'AccessDenied', e.message);
        return refuse(500, 'InternalError', e.message);
      }
    },
  };
}
