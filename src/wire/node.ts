// Attested nodes → the wire AttestedNode message (server → admin clients).
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { AttestedNode } from '../core/node.ts';
import type { AttestedNodeSchema } from '../../proto/gen/tessera/v1/types_pb.js';
import { secondsFromMs } from './time.ts';

export function nodeToWire(n: AttestedNode): MessageInitShape<typeof AttestedNodeSchema> {
  return {
    spiffeId: n.spiffeId,
    attestationType: n.attestationType,
    serialNumber: n.serialNumber,
    expiresAt: secondsFromMs(n.expiresAt),
    selectors: n.selectors.map((s) => ({ type: s.type, value: s.value })),
    banned: n.banned,
    canReattest: n.canReattest,
    createdAt: secondsFromMs(n.createdAt),
    updatedAt: secondsFromMs(n.updatedAt),
  };
}
