// Local stand-ins for the cloud metadata services, on 127.0.0.1, speaking as the real ones do:
// AWS IMDSv2 (PUT /latest/api/token with a TTL header, then GETs that must carry the token, 401
// without it), the GCE metadata server (Metadata-Flavor: Google required, echoed back) and Azure
// IMDS (Metadata: true required, 400 without it). What they serve is set by the test.
import http from 'node:http';
import { randomBytes } from 'node:crypto';

export interface MetadataStandIn {
  readonly url: string;
  /** Requests seen, as "METHOD path" (query included). */
  readonly requests: string[];
  close(): Promise<void>;
}

async function listen(handler: http.RequestListener, requests: string[]): Promise<MetadataStandIn> {
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const send = (res: http.ServerResponse, status: number, body: string, type = 'text/plain') => {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
};

/** AWS IMDSv2 serving `evidence()` at the instance-identity paths. */
export function awsImds(
  evidence: () => { document: string; pkcs7: string },
): Promise<MetadataStandIn> {
  const tokens = new Set<string>();
  return listen((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'PUT' && url.pathname === '/latest/api/token') {
      const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds']);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21600) return send(res, 400, '');
      const t = randomBytes(32).toString('base64');
      tokens.add(t);
      return send(res, 200, t);
    }
    if (req.method !== 'GET') return send(res, 405, '');
    const token = req.headers['x-aws-ec2-metadata-token'];
    if (typeof token !== 'string' || !tokens.has(token)) return send(res, 401, '');
    const e = evidence();
    if (url.pathname === '/latest/dynamic/instance-identity/document')
      return send(res, 200, e.document);
    if (url.pathname === '/latest/dynamic/instance-identity/pkcs7') return send(res, 200, e.pkcs7);
    return send(res, 404, '');
  }, []);
}

/** The GCE metadata server serving `token(audience)` as the default service account's identity. */
export function gceMetadata(
  token: (audience: string, format: string) => string,
): Promise<MetadataStandIn> {
  return listen((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.headers['metadata-flavor'] !== 'Google')
      return send(res, 403, 'Missing Metadata-Flavor:Google header.');
    res.setHeader('Metadata-Flavor', 'Google');
    if (
      req.method === 'GET' &&
      url.pathname === '/computeMetadata/v1/instance/service-accounts/default/identity'
    ) {
      const aud = url.searchParams.get('audience');
      if (!aud) return send(res, 400, 'non-empty audience parameter required');
      return send(res, 200, token(aud, url.searchParams.get('format') ?? 'standard'));
    }
    return send(res, 404, '');
  }, []);
}

/** Azure IMDS serving `token(resource)` as the VM's managed identity access token. */
export function azureImds(token: (resource: string) => string): Promise<MetadataStandIn> {
  return listen((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.headers.metadata !== 'true')
      return send(
        res,
        400,
        JSON.stringify({
          error: 'invalid_request',
          error_description: 'Required metadata header not specified',
        }),
        'application/json',
      );
    if (req.method === 'GET' && url.pathname === '/metadata/identity/oauth2/token') {
      const resource = url.searchParams.get('resource');
      if (!url.searchParams.get('api-version') || !resource)
        return send(res, 400, JSON.stringify({ error: 'invalid_request' }), 'application/json');
      const now = Math.floor(Date.now() / 1000);
      return send(
        res,
        200,
        JSON.stringify({
          access_token: token(resource),
          refresh_token: '',
          expires_in: '3599',
          expires_on: String(now + 3599),
          not_before: String(now),
          resource,
          token_type: 'Bearer',
        }),
        'application/json',
      );
    }
    return send(res, 404, '');
  }, []);
}
