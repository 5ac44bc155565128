// CA and JWT authorities → the wire AuthorityInfo message (server → admin clients): the public
// certificate only, never key material.
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { Authority } from '../core/authority.ts';
import type { AuthorityInfoSchema } from '../../proto/gen/tessera/v1/authority_pb.js';
import { secondsFromMs } from './time.ts';

export function authorityToWire(a: Authority): MessageInitShape<typeof AuthorityInfoSchema> {
  return {
    id: a.id,
    kind: a.kind,
    status: a.status,
    keyType: a.keyType,
    notBefore: secondsFromMs(a.notBefore),
    notAfter: secondsFromMs(a.notAfter),
    tainted: a.tainted,
    serverId: a.serverId,
    certificate: a.certChainDer[0] ?? new Uint8Array(),
  };
}
