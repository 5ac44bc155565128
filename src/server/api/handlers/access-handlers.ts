// ServerWorkloadService, CredentialProviderService and the model methods of AccessPolicyService
// (CRUD and ImportAccessDocument): thin translations to the admin services of server/access.
// TestAccess and WhatIfAccess live in the decision room's handler file.
import type { ServiceImpl } from '@connectrpc/connect';
import { InvalidArgumentError } from '../../../core/errors.ts';
import type {
  AccessPolicyService as AccessPolicyApi,
  CredentialProviderService as CredentialProviderApi,
  ServerWorkloadService as ServerWorkloadApi,
} from '../../../../proto/gen/tessera/v1/access_pb.js';
import {
  accessPolicyFromWire,
  accessPolicyToWire,
  credentialProviderFromWire,
  credentialProviderToWire,
  serverWorkloadFromWire,
  serverWorkloadToWire,
} from '../../../wire/access.ts';
import type { AccessModelServices } from '../../access/access-model.ts';
import { requestOf } from '../context-keys.ts';

const required = <T>(v: T | undefined, field: string): T => {
  if (v === undefined) throw new InvalidArgumentError(`${field} is required`);
  return v;
};

// The services are read when a call arrives, not at registration (the authz completeness test
// registers the router without any).
export function serverWorkloadHandlers(
  m: AccessModelServices,
): Partial<ServiceImpl<typeof ServerWorkloadApi>> {
  const s = () => m.serverWorkloads;
  return {
    async createServerWorkload(req, ctx) {
      const w = serverWorkloadFromWire(required(req.serverWorkload, 'server_workload'));
      return { serverWorkload: serverWorkloadToWire(await s().create(requestOf(ctx), w)) };
    },
    async listServerWorkloads() {
      return { serverWorkloads: (await s().list()).map(serverWorkloadToWire) };
    },
    async getServerWorkload(req) {
      return { serverWorkload: serverWorkloadToWire(await s().get(req.name)) };
    },
    async updateServerWorkload(req, ctx) {
      const w = serverWorkloadFromWire(required(req.serverWorkload, 'server_workload'));
      return { serverWorkload: serverWorkloadToWire(await s().update(requestOf(ctx), w)) };
    },
    async deleteServerWorkload(req, ctx) {
      return { serverWorkload: serverWorkloadToWire(await s().delete(requestOf(ctx), req.name)) };
    },
  };
}

export function credentialProviderHandlers(
  m: AccessModelServices,
): Partial<ServiceImpl<typeof CredentialProviderApi>> {
  const s = () => m.credentialProviders;
  return {
    async createCredentialProvider(req, ctx) {
      const p = credentialProviderFromWire(required(req.credentialProvider, 'credential_provider'));
      return { credentialProvider: credentialProviderToWire(await s().create(requestOf(ctx), p)) };
    },
    async listCredentialProviders() {
      return { credentialProviders: (await s().list()).map(credentialProviderToWire) };
    },
    async getCredentialProvider(req) {
      return { credentialProvider: credentialProviderToWire(await s().get(req.name)) };
    },
    async deleteCredentialProvider(req, ctx) {
      const { provider, leasesEnded } = await s().delete(requestOf(ctx), req.name);
      return { credentialProvider: credentialProviderToWire(provider), leasesEnded };
    },
  };
}

export function accessPolicyModelHandlers(
  m: AccessModelServices,
): Partial<ServiceImpl<typeof AccessPolicyApi>> {
  const s = () => m.accessPolicies;
  return {
    async createAccessPolicy(req, ctx) {
      const p = accessPolicyFromWire(required(req.accessPolicy, 'access_policy'));
      return { accessPolicy: accessPolicyToWire(await s().create(requestOf(ctx), p)) };
    },
    async listAccessPolicies(req) {
      const list = await s().list(req.server === '' ? {} : { server: req.server });
      return { accessPolicies: list.map(accessPolicyToWire) };
    },
    async getAccessPolicy(req) {
      return { accessPolicy: accessPolicyToWire(await s().get(req.name)) };
    },
    async updateAccessPolicy(req, ctx) {
      const p = accessPolicyFromWire(required(req.accessPolicy, 'access_policy'));
      const { policy } = await s().update(requestOf(ctx), p);
      return { accessPolicy: accessPolicyToWire(policy) };
    },
    async deleteAccessPolicy(req, ctx) {
      const { policy, leasesEnded } = await s().delete(requestOf(ctx), req.name);
      return { accessPolicy: accessPolicyToWire(policy), leasesEnded };
    },
    async importAccessDocument(req, ctx) {
      return m.importer.import(requestOf(ctx), req.document);
    },
  };
}
