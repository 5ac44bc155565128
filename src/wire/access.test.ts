import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { create } from '@bufbuild/protobuf';
import {
  AccessPolicySchema,
  CredentialProviderSchema,
  ServerWorkloadSchema,
} from '../../proto/gen/tessera/v1/access_pb.js';
import {
  accessPolicyFromWire,
  accessPolicyToWire,
  credentialProviderFromWire,
  credentialProviderToWire,
  serverWorkloadFromWire,
  serverWorkloadToWire,
} from './access.ts';

const T = 1_700_000_000_123;

describe('access model on the wire', () => {
  it('server workloads round-trip their fields, times in ms', () => {
    const w = {
      name: 'api',
      host: 'api.internal',
      port: 443,
      protocol: 'https' as const,
      pathPrefix: '/v1',
      present: 'header:X-Key',
      tls: true,
      tlsCa: '',
      tlsDecrypt: true,
      createdAt: T,
      updatedAt: T + 1,
    };
    const m = create(ServerWorkloadSchema, serverWorkloadToWire(w));
    assert.equal(m.createdAt, BigInt(T));
    const { createdAt: _c, updatedAt: _u, ...fields } = w;
    assert.deepEqual(serverWorkloadFromWire(m), fields);
  });

  it('provider configs travel as a Struct; policies carry deny as effect', () => {
    const p = {
      name: 'p',
      type: 'jwt-svid',
      config: { audience: ['a'], n: { k: 1 } },
      createdAt: T,
      updatedAt: T,
    };
    const m = create(CredentialProviderSchema, credentialProviderToWire(p));
    assert.deepEqual(credentialProviderFromWire(m), {
      name: 'p',
      type: 'jwt-svid',
      config: p.config,
    });
    const deny = {
      name: 'd',
      client: 'spiffe://td',
      server: 's',
      credentialProvider: '',
      condition: '',
      effect: 'deny' as const,
      createdAt: T,
      updatedAt: T,
    };
    const pm = create(AccessPolicySchema, accessPolicyToWire(deny));
    assert.equal(pm.deny, true);
    assert.deepEqual(accessPolicyFromWire(pm), {
      name: 'd',
      client: 'spiffe://td',
      server: 's',
      credentialProvider: '',
      condition: '',
      deny: true,
    });
  });
});
