// `present: aws-sigv4`: the application's SDK signed its request with placeholder keys; the
// request goes upstream re-signed with the brokered AWS credentials (../sigv4/resign.ts). The
// re-signer signs exactly the headers sent upstream — hop-by-hop ones dropped, Host set to the
// server workload's, `Accept-Encoding: identity` — and its body (the client's, or its re-signed
// aws-chunked / buffered form). A request that is not well-formed SigV4 is 400 naming what.
import type { Readable } from 'node:stream';
import type { CredentialValue } from '../../../core/access.ts';
import type { Clock } from '../../../core/clock.ts';
import { resignSigV4 } from '../sigv4/resign.ts';
import { HttpAnswer, type ClientRequest } from './http-answer.ts';
import { upstreamHeaders, type HeaderMap } from './request-head.ts';
import { Scrubber } from './scrub.ts';

export interface Resigned {
  readonly headers: HeaderMap;
  readonly body: Readable;
  /** Masks the secret key and the session token, should the server echo them. */
  readonly scrubber: Scrubber;
}

/**
 * The request for upstream, re-signed with `value` (an `aws` credential; anything else is the
 * server's misconfiguration: 502). Throws InvalidArgumentError when the request is not SigV4.
 */
export async function resignForUpstream(
  req: ClientRequest,
  target: string,
  host: string,
  value: CredentialValue,
  clock: Clock,
): Promise<Resigned> {
  if (value.kind !== 'aws') {
    throw new HttpAnswer(502, {
      error: `the released credential (${value.kind}) cannot be presented as aws-sigv4: check the server workload's credential provider`,
    });
  }
  const secrets = [...new Set([value.secretAccessKey, value.sessionToken].filter((s) => s !== ''))];
  const withEncoded = [...new Set(secrets.flatMap((s) => [s, encodeURIComponent(s)]))];
  const headers = upstreamHeaders(req.rawHeaders, host, {
    header: null,
    query: null,
    secrets: withEncoded,
  });
  const q = target.indexOf('?');
  const resigned = await resignSigV4(
    {
      method: req.method ?? 'GET',
      path: q < 0 ? target : target.slice(0, q),
      query: q < 0 ? '' : target.slice(q + 1),
      headers,
    },
    req as Readable,
    value,
    { clock },
  );
  return {
    headers: resigned.headers,
    body: resigned.body,
    scrubber: new Scrubber(withEncoded),
  };
}
