// StsService: issuers and trust policies of the token exchange; thin translations to StsAdmin.
import type { ServiceImpl } from '@connectrpc/connect';
import { InvalidArgumentError } from '../../../core/errors.ts';
import type {
  StsIssuer,
  StsService as StsApi,
  TrustPolicy,
} from '../../../../proto/gen/tessera/v1/sts_pb.js';
import type { StsAdmin } from '../../sts/admin.ts';
import type { RegisteredIssuer, RegisteredPolicy } from '../../sts/registry.ts';
import { requestOf } from '../context-keys.ts';

type Wire<T> = Omit<T, '$typeName' | '$unknown'>;

function issuerToWire(r: RegisteredIssuer): Wire<StsIssuer> {
  return {
    issuer: r.trusted.issuer,
    audiences: [...r.trusted.audiences],
    keySource: r.keySource,
    source: r.source,
    keyIds: [...r.trusted.keys.keys()],
    createdAt: BigInt(r.record?.createdAt ?? 0),
  };
}

function policyToWire(r: RegisteredPolicy): Wire<TrustPolicy> {
  const p = r.compiled.policy;
  return {
    name: p.name,
    issuer: p.issuer,
    condition: p.condition,
    attributeMapping: { ...p.attribute_mapping },
    spiffeId: p.spiffe_id ?? '',
    accessTokenAudience: p.access_token?.audience ?? '',
    scopes: [...(p.access_token?.scopes ?? [])],
    requireDpop: p.access_token?.require_dpop ?? false,
    introspectionClient: r.record?.introspectionClient ?? r.introspectionClient ?? false,
    ttl: p.ttl,
    template: r.record?.template ?? '',
    source: r.source,
    createdAt: BigInt(r.record?.createdAt ?? 0),
    updatedAt: BigInt(r.record?.updatedAt ?? 0),
  };
}

/** The wire policy as a policy document; empty fields are absent. */
function policyDocument(p: TrustPolicy | undefined): Record<string, unknown> {
  if (!p) return {};
  const doc: Record<string, unknown> = {};
  if (p.name) doc.name = p.name;
  if (p.issuer) doc.issuer = p.issuer;
  if (p.condition) doc.condition = p.condition;
  if (Object.keys(p.attributeMapping).length > 0) doc.attribute_mapping = { ...p.attributeMapping };
  if (p.spiffeId) doc.spiffe_id = p.spiffeId;
  if (p.accessTokenAudience)
    doc.access_token = {
      audience: p.accessTokenAudience,
      scopes: [...p.scopes],
      require_dpop: p.requireDpop,
    };
  else if (p.scopes.length > 0)
    throw new InvalidArgumentError('scopes: only with an access-token audience');
  else if (p.requireDpop)
    throw new InvalidArgumentError('require_dpop: only with an access-token audience');
  if (p.ttl) doc.ttl = p.ttl;
  return doc;
}

export function stsHandlers(admin: StsAdmin): Partial<ServiceImpl<typeof StsApi>> {
  return {
    async addIssuer(req, ctx) {
      const r = await admin.addIssuer(requestOf(ctx), {
        issuer: req.issuer,
        audiences: req.audiences,
        jwks: req.jwks,
        discovery: req.discovery,
      });
      return { issuer: issuerToWire(r) };
    },
    async listIssuers() {
      return { issuers: (await admin.listIssuers()).map(issuerToWire) };
    },
    async getIssuer(req) {
      return { issuer: issuerToWire(await admin.getIssuer(req.issuer)) };
    },
    async removeIssuer(req, ctx) {
      await admin.removeIssuer(requestOf(ctx), req.issuer);
      return {};
    },
    async createTrustPolicy(req, ctx) {
      const r = await admin.createPolicy(requestOf(ctx), {
        document: policyDocument(req.policy),
        ...(req.template ? { template: req.template } : {}),
        templateParams: req.templateParams,
        introspectionClient: req.policy?.introspectionClient ?? false,
      });
      return { policy: policyToWire(r) };
    },
    async listTrustPolicies() {
      return { policies: (await admin.listPolicies()).map(policyToWire) };
    },
    async getTrustPolicy(req) {
      return { policy: policyToWire(await admin.getPolicy(req.name)) };
    },
    async deleteTrustPolicy(req, ctx) {
      await admin.deletePolicy(requestOf(ctx), req.name);
      return {};
    },
    async testTrustPolicy(req) {
      const r = await admin.testPolicy({
        ...(req.policyName ? { policyName: req.policyName } : {}),
        ...(req.policy ? { policy: policyDocument(req.policy) } : {}),
        ...(req.token ? { token: req.token } : {}),
        ...(req.claims ? { claims: req.claims } : {}),
      });
      const attributes: Record<string, string> = {};
      for (const [k, v] of Object.entries(r.attributes))
        attributes[k] = typeof v === 'string' ? v : JSON.stringify(v);
      return {
        decision: r.decision,
        policy: r.policy,
        failing: r.failing ?? '',
        reason: r.reason ?? '',
        attributes,
        spiffeId: r.spiffe_id ?? '',
        accessTokenAudience: r.access_token?.audience ?? '',
        scopes: [...(r.access_token?.scopes ?? [])],
        ttlSeconds: BigInt(Math.floor(r.ttl_seconds ?? 0)),
        mode: r.mode,
      };
    },
  };
}
