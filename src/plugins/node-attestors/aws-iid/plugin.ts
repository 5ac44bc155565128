// aws_iid: both halves and their config. Server: `node_attestors.aws_iid` with the allowed
// `account_ids`, `allow_reattestation` and optionally `ca_certificates_file` (PEM certificates
// that replace AWS's published ones). Agent: `aws_iid: { endpoint }` (IMDS, default
// http://169.254.169.254). Optionally `ec2_api` (docs/node-attestors.md): DescribeInstances with
// the server's AWS credentials from the environment, for tag, security group and instance
// profile selectors, re-read every `ec2_api.refresh_interval` for attested instances (refresh.ts).
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseDuration } from '../../../core/duration.ts';
import { allowReattestationSetting, metadataEndpointSetting } from '../cloud-config.ts';
import { metadataEndpoint } from '../metadata-http.ts';
import type { NodeAttestorPlugin, NodeAttestorServerDeps } from '../node-attestor.ts';
import { endpointUrl } from '../../credential-providers/shared/endpoint-url.ts';
import { awsIidAgent } from './agent.ts';
import { AWS_PKCS7_CERTIFICATES } from './aws-certificates.ts';
import { trustedCertificate } from './pkcs7.ts';
import { createAwsIidRefresher } from './refresh.ts';
import {
  AWS_IID_TYPE,
  type AwsTrustedCertificate,
  type Ec2ApiOptions,
  createAwsIidAttestor,
} from './server.ts';

const MIN_REFRESH_MS = 1_000;
const MAX_REFRESH_MS = 86_400_000;

/** A duration ("5m") between 1s and 24h, or 0 ("0", "0s") for off; compiled to ms. */
const refreshIntervalSetting = z
  .union([z.string().max(32), z.number()])
  .default('5m')
  .transform((v, ctx) => {
    const text = String(v).trim();
    if (/^0+(ms|s|m|h|d)?$/.test(text)) return 0;
    try {
      const ms = parseDuration(text, '');
      if (ms >= MIN_REFRESH_MS && ms <= MAX_REFRESH_MS) return ms;
      ctx.addIssue({
        code: 'custom',
        message: `must be 0 (off) or between 1s and 24h, got "${text}"`,
      });
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
    }
    return z.NEVER;
  });

const serverSchema = z.strictObject({
  /** AWS accounts whose instances may attest (12 digits each). */
  account_ids: z
    .array(z.string().regex(/^\d{12}$/, 'expected a 12-digit AWS account ID'))
    .min(1)
    .max(1000),
  allow_reattestation: allowReattestationSetting,
  /** PEM file of the certificates that replace AWS's published PKCS#7 certificates. */
  ca_certificates_file: z.string().default(''),
  /** Tags, security groups and instance profile through the EC2 API (DescribeInstances). */
  ec2_api: z
    .strictObject({
      /** "" = https://ec2.<region>.amazonaws.com (the document's region); a VPC endpoint, a stand-in. */
      endpoint: z.union([z.literal(''), endpointUrl]).default(''),
      /** `aws_iid:tag:<key>:<value>` selectors. */
      tags: z.boolean().default(true),
      /** `aws_iid:instance_profile:<arn>` selector. */
      instance_profile: z.boolean().default(true),
      /** How often the server re-describes attested instances (refresh.ts); "0" = never. */
      refresh_interval: refreshIntervalSetting,
    })
    .optional(),
});

const agentSchema = z.strictObject({
  /** The instance metadata service. */
  endpoint: metadataEndpointSetting('http://169.254.169.254'),
});

const PEM_RE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function certificates(file: string): AwsTrustedCertificate[] {
  if (file === '')
    return AWS_PKCS7_CERTIFICATES.map((c) => ({
      ...trustedCertificate(c.pem),
      regions: c.regions,
    }));
  // Read once at startup, by the plugin that owns the setting.
  const pems = [...readFileSync(file, 'utf8').matchAll(PEM_RE)].map((m) => m[0]);
  if (pems.length === 0) throw new TypeError(`aws_iid: ${file} holds no certificate`);
  return pems.map((pem) => ({ ...trustedCertificate(pem), regions: null }));
}

function ec2Options(
  c: NonNullable<z.output<typeof serverSchema>['ec2_api']>,
  deps: NodeAttestorServerDeps,
): Ec2ApiOptions {
  if (!deps.awsCredentials)
    throw new TypeError(
      'aws_iid.ec2_api: the server has no AWS credentials: set AWS_ACCESS_KEY_ID and ' +
        'AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones) in its environment',
    );
  return {
    endpoint: c.endpoint,
    tags: c.tags,
    instanceProfile: c.instance_profile,
    credentials: deps.awsCredentials,
    fetch: deps.fetch ?? fetch,
  };
}

export const awsIidPlugin: NodeAttestorPlugin<typeof serverSchema, typeof agentSchema> = {
  type: AWS_IID_TYPE,
  serverSchema,
  createServer: (config, deps) => {
    const ec2 = config.ec2_api ? ec2Options(config.ec2_api, deps) : undefined;
    const attestor = createAwsIidAttestor({
      certificates: certificates(config.ca_certificates_file),
      accountIds: new Set(config.account_ids),
      allowReattestation: config.allow_reattestation,
      now: deps.now,
      ...(ec2 ? { ec2 } : {}),
    });
    const everyMs = config.ec2_api?.refresh_interval ?? 0;
    if (!ec2 || everyMs === 0) return attestor;
    return { ...attestor, refresher: createAwsIidRefresher({ ec2, everyMs, now: deps.now }) };
  },
  agentSchema,
  createAgent: async (config) => awsIidAgent(metadataEndpoint(config.endpoint, 'aws_iid.endpoint')),
};
