// FederationService and the federated-bundle methods of BundleService: thin translations to the
// FederationService of server/federation.
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { ServiceImpl } from '@connectrpc/connect';
import { InvalidArgumentError } from '../../../core/errors.ts';
import type { FederationRelationship } from '../../../core/federation.ts';
import type { BundleService as BundleApi } from '../../../../proto/gen/tessera/v1/bundle_pb.js';
import type {
  FederationService as FederationApi,
  FederationRelationshipSchema,
  FederationRelationshipSpec,
} from '../../../../proto/gen/tessera/v1/federation_pb.js';
import type { BundleStore } from '../../../store/types.ts';
import type {
  FederationService,
  RelationshipRequest,
} from '../../federation/federation-service.ts';
import { requestOf } from '../context-keys.ts';
import { bundleToWire } from '../../../wire/bundle.ts';
import { secondsFromMs } from '../../../wire/time.ts';

function specFromWire(s: FederationRelationshipSpec | undefined): RelationshipRequest {
  if (!s) throw new InvalidArgumentError('relationship is required');
  return {
    trustDomain: s.trustDomain,
    bundleEndpointUrl: s.bundleEndpointUrl,
    profile: s.profile,
    endpointSpiffeId: s.endpointSpiffeId,
    trustBundle: s.trustBundle,
  };
}

async function relationshipToWire(
  bundles: Pick<BundleStore, 'get'>,
  r: FederationRelationship,
): Promise<MessageInitShape<typeof FederationRelationshipSchema>> {
  const bundle = await bundles.get(r.trustDomain);
  return {
    trustDomain: r.trustDomain,
    bundleEndpointUrl: r.bundleEndpointUrl,
    profile: r.profile,
    endpointSpiffeId: r.endpointSpiffeId,
    source: r.source,
    createdAt: secondsFromMs(r.createdAt),
    updatedAt: secondsFromMs(r.updatedAt),
    lastFetchAtMs: BigInt(r.status.lastFetchAt),
    lastSuccessAtMs: BigInt(r.status.lastSuccessAt),
    lastError: r.status.lastError,
    nextAttemptAtMs: BigInt(r.status.nextAttemptAt),
    failures: r.status.failures,
    bundleSequence: bundle ? BigInt(bundle.sequence) : -1n,
  };
}

export function federationHandlers(
  bundles: Pick<BundleStore, 'get'>,
  federation: FederationService,
): Partial<ServiceImpl<typeof FederationApi>> {
  const wire = (r: FederationRelationship) => relationshipToWire(bundles, r);
  return {
    async createFederationRelationship(req, ctx) {
      return {
        relationship: await wire(
          await federation.create(requestOf(ctx), specFromWire(req.relationship)),
        ),
      };
    },
    async listFederationRelationships() {
      const rels = await federation.list();
      return { relationships: await Promise.all(rels.map(wire)) };
    },
    async getFederationRelationship(req) {
      return { relationship: await wire(await federation.get(req.trustDomain)) };
    },
    async updateFederationRelationship(req, ctx) {
      return {
        relationship: await wire(
          await federation.update(requestOf(ctx), specFromWire(req.relationship)),
        ),
      };
    },
    async deleteFederationRelationship(req, ctx) {
      return { relationship: await wire(await federation.delete(requestOf(ctx), req.trustDomain)) };
    },
    async refreshFederationRelationship(req, ctx) {
      const { result, relationship } = await federation.refresh(requestOf(ctx), req.trustDomain);
      return {
        ok: result.ok,
        error: result.ok ? '' : result.error,
        updated: result.ok && result.updated,
        ignoredLowerSequence: result.ok && result.ignoredLowerSequence,
        ...(result.ok ? { bundle: bundleToWire(result.bundle) } : {}),
        relationship: await wire(relationship),
      };
    },
  };
}

export function federatedBundleHandlers(
  federation: FederationService,
): Partial<ServiceImpl<typeof BundleApi>> {
  return {
    async setFederatedBundle(req, ctx) {
      return {
        bundle: bundleToWire(
          await federation.setBundle(requestOf(ctx), req.trustDomain, req.bundle),
        ),
      };
    },
    async listFederatedBundles() {
      return { bundles: (await federation.listBundles()).map(bundleToWire) };
    },
    async deleteFederatedBundle(req, ctx) {
      await federation.deleteBundle(requestOf(ctx), req.trustDomain);
      return {};
    },
  };
}
