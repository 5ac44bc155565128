// Config fields the cloud node attestors (aws_iid, gcp_iit, azure_msi) share: the provider's key
// URL, the metadata endpoint and trust on first use. Each setting is checked with the same
// function that later reads it, so a value the schema accepts is one the attestor can use.
import { z } from 'zod';
import { JwksSource, jwksUrl } from './cloud-jwt.ts';
import { metadataEndpoint } from './metadata-http.ts';

/** Whether `read` accepts the value (the readers throw on a bad one). */
const accepts = (read: (v: string) => unknown) => (v: string) => {
  try {
    read(v);
    return true;
  } catch {
    return false;
  }
};

/** The provider's token signing keys: https, or http only to loopback (cloud-jwt.ts). */
export const jwksUrlSetting = (defaultUrl: string) =>
  z
    .string()
    .default(defaultUrl)
    .refine(
      accepts((v) => jwksUrl(v, 'jwks_url')),
      'expected https (http only to loopback)',
    );

/** The instance metadata service the agent half asks (metadata-http.ts). */
export const metadataEndpointSetting = (defaultUrl: string) =>
  z
    .string()
    .default(defaultUrl)
    .refine(
      accepts((v) => metadataEndpoint(v, 'endpoint')),
      'expected an http(s) URL without query',
    );

/** Let an instance attest again while its node is recorded (off: trust on first use). */
export const allowReattestationSetting = z.boolean().default(false);

/** The key source of a validated `jwks_url` setting of attestor `type`. */
export function jwksSourceOf(type: string, url: string, now: () => number): JwksSource {
  return new JwksSource({ url: jwksUrl(url, `${type}.jwks_url`), now });
}
