// Server half of azure_msi: a managed-identity access token from Azure IMDS, verified against
// Microsoft Entra's keys, issued by an allowed tenant for that tenant's configured resource
// (audience); the VM is named by `xms_mirid`. The agent ID is the identity's principal (object)
// ID, as SPIRE's azure_msi. The token is a bearer token valid for hours: a copy can be replayed
// until it expires, so the principal is trusted on first use unless re-attestation is allowed.
import { PermissionDeniedError } from '../../../core/errors.ts';
import type { Selector } from '../../../core/selector.ts';
import { type JwksSource, verifyCloudJwt } from '../cloud-jwt.ts';
import type { NodeAttestor } from '../node-attestor.ts';

export const AZURE_MSI_TYPE = 'azure_msi';
export const DEFAULT_AZURE_RESOURCE = 'https://management.azure.com/';

const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const NAME_RE = /^[A-Za-z0-9._()-]{1,90}$/;

export interface AzureTenant {
  readonly tenantId: string;
  /** The audience tokens must carry: the resource the agent requests its token for. */
  readonly resource: string;
}

export interface AzureMsiServerOptions {
  readonly keys: JwksSource;
  readonly tenants: readonly AzureTenant[];
  readonly allowReattestation: boolean;
  readonly now: () => number;
}

export interface AzureIdentity {
  readonly tenantId: string;
  readonly principalId: string;
  readonly subscription: string;
  readonly resourceGroup: string;
  /** The VM's name when the identity is the VM's system-assigned one, else null. */
  readonly vmName: string | null;
}

const deny = (m: string) => new PermissionDeniedError(`azure_msi: ${m}`);

/** Issuers Entra uses for a tenant's access tokens (v1 tokens, which IMDS gives, and v2). */
export const azureIssuers = (tenantId: string): string[] => [
  `https://sts.windows.net/${tenantId}/`,
  `https://login.microsoftonline.com/${tenantId}/v2.0`,
];

/** `/subscriptions/S/resourcegroups/G/providers/Microsoft.Compute/virtualMachines/N` (any case). */
export function parseMirid(mirid: unknown): Omit<AzureIdentity, 'tenantId' | 'principalId'> {
  if (typeof mirid !== 'string' || mirid.length > 1024) throw deny('token has no valid xms_mirid');
  const p = mirid.split('/');
  if (
    p.length < 9 ||
    p[0] !== '' ||
    p[1]?.toLowerCase() !== 'subscriptions' ||
    p[3]?.toLowerCase() !== 'resourcegroups' ||
    p[5]?.toLowerCase() !== 'providers'
  )
    throw deny('token has no valid xms_mirid');
  const subscription = (p[2] ?? '').toLowerCase();
  const resourceGroup = p[4] ?? '';
  if (!GUID_RE.test(subscription) || !NAME_RE.test(resourceGroup))
    throw deny('token has no valid xms_mirid');
  const isVm =
    p.length === 9 &&
    p[6]?.toLowerCase() === 'microsoft.compute' &&
    p[7]?.toLowerCase() === 'virtualmachines' &&
    NAME_RE.test(p[8] ?? '');
  return { subscription, resourceGroup, vmName: isVm ? (p[8] as string) : null };
}

export function azureMsiSelectors(i: AzureIdentity): Selector[] {
  const s = (value: string): Selector => ({ type: AZURE_MSI_TYPE, value });
  return [
    s(`tenant:${i.tenantId}`),
    s(`principal_id:${i.principalId}`),
    s(`subscription:${i.subscription}`),
    s(`resource_group:${i.resourceGroup}`),
    ...(i.vmName ? [s(`vm_name:${i.vmName}`)] : []),
  ];
}

/** The unverified `tid` picks the tenant config (keys, issuer and audience are then checked). */
function unverifiedTenant(token: string): string {
  try {
    const p = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
    return typeof p?.tid === 'string' ? p.tid : '';
  } catch {
    return '';
  }
}

export function createAzureMsiAttestor(o: AzureMsiServerOptions): NodeAttestor {
  return {
    type: AZURE_MSI_TYPE,
    async attest(payload) {
      const token = Buffer.from(payload).toString('utf8');
      const tid = unverifiedTenant(token).toLowerCase();
      const tenant = o.tenants.find((t) => t.tenantId === tid);
      if (!tenant) throw deny(`tenant "${tid.slice(0, 64)}" is not allowed`);
      const claims = await verifyCloudJwt(token, {
        what: AZURE_MSI_TYPE,
        keys: o.keys,
        now: o.now(),
        issuers: azureIssuers(tenant.tenantId),
        audience: tenant.resource,
      });
      if (claims.tid !== tenant.tenantId) throw deny('token tenant does not match its issuer');
      const principalId = claims.oid;
      if (typeof principalId !== 'string' || !GUID_RE.test(principalId))
        throw deny('token has no valid oid (principal ID)');
      const id: AzureIdentity = {
        tenantId: tenant.tenantId,
        principalId,
        ...parseMirid(claims.xms_mirid),
      };
      return {
        idSegments: [id.tenantId, id.principalId],
        selectors: azureMsiSelectors(id),
        canReattest: o.allowReattestation,
        trustOnFirstUse: !o.allowReattestation,
      };
    },
  };
}
