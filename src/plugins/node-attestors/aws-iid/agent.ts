// Agent half of aws_iid: the instance identity document and its PKCS#7 through IMDSv2 (a session
// token from PUT /latest/api/token, then GETs carrying it). The document is the whole evidence:
// there is no challenge.
import { InvalidArgumentError } from '../../../core/errors.ts';
import { metadataRequest } from '../metadata-http.ts';
import type { AgentNodeAttestor } from '../node-attestor.ts';
import { encodeAwsIidPayload } from './document.ts';
import { AWS_IID_TYPE } from './server.ts';

/** Long enough for the three requests; IMDS allows 1..21600 seconds. */
const TOKEN_TTL_SECONDS = '60';

export async function fetchAwsIid(endpoint: URL): Promise<{ document: string; pkcs7: string }> {
  const at = (p: string) => new URL(p, endpoint);
  const token = await metadataRequest('AWS IMDS token', at('/latest/api/token'), {
    method: 'PUT',
    headers: { 'X-aws-ec2-metadata-token-ttl-seconds': TOKEN_TTL_SECONDS },
  });
  const headers = { 'X-aws-ec2-metadata-token': token.trim() };
  const document = await metadataRequest(
    'AWS IMDS identity document',
    at('/latest/dynamic/instance-identity/document'),
    { headers },
  );
  const pkcs7 = await metadataRequest(
    'AWS IMDS identity PKCS#7',
    at('/latest/dynamic/instance-identity/pkcs7'),
    { headers },
  );
  return { document, pkcs7 };
}

export function awsIidAgent(endpoint: URL): AgentNodeAttestor {
  return {
    type: AWS_IID_TYPE,
    // Fresh evidence can be fetched at any time; the server decides (trust on first use).
    canReattest: true,
    payload: async () => {
      const { document, pkcs7 } = await fetchAwsIid(endpoint);
      return encodeAwsIidPayload(document, pkcs7);
    },
    answer: () => {
      throw new InvalidArgumentError('aws_iid attestation takes no challenge');
    },
  };
}
