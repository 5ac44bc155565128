// tessera.identity.v1.IdentityDocumentService/FetchIdentityDocument on the Workload API socket
// (docs/identity-document.md). The caller is attested exactly as a Workload API caller (the
// connection's peer, pinned, its selectors, attributes and entries) and must send the
// `workload.spiffe.io: true` header (the socket server's interceptor). The agent picks the
// caller's entry and asks the server, which is the authority; nothing is cached: every document
// is signed, checked and audited by the server.
import type { ServiceImpl } from '@connectrpc/connect';
import { IdentityDocumentService } from '../../../proto/gen/tessera/identity/v1/document_pb.js';
import type { Entry } from '../../core/entry.ts';
import { InvalidArgumentError, PermissionDeniedError } from '../../core/errors.ts';
import { formatSelector } from '../../core/selector.ts';
import { SpiffeId } from '../../core/spiffe-id.ts';
import type { AttestationService } from '../attestation/attestation-service.ts';
import { attestCaller } from '../workload-api/caller.ts';
import type { SocketService } from '../workload-api/server.ts';
import type { DocumentSigner } from './document-client.ts';

const MAX_SPIFFE_ID_BYTES = 2048;

export interface DocumentSocketOptions {
  readonly attestation: AttestationService;
  readonly sign: DocumentSigner;
}

export function identityDocumentSocketService(o: DocumentSocketOptions): SocketService {
  return {
    typeName: IdentityDocumentService.typeName,
    register: (router) => router.service(IdentityDocumentService, handlers(o)),
  };
}

function handlers(o: DocumentSocketOptions): ServiceImpl<typeof IdentityDocumentService> {
  return {
    async fetchIdentityDocument(req, ctx) {
      // Checked before attesting: a bad ask costs nothing. The server bounds the audience too.
      if (req.audience.length === 0) throw new InvalidArgumentError('audience must be specified');
      checkSpiffeId(req.spiffeId);
      const caller = await attestCaller(o, ctx, true);
      const entry = pickEntry(caller.entries, req.spiffeId);
      const doc = await o.sign(
        {
          entryId: entry.id,
          audience: req.audience,
          selectors: caller.selectors.map(formatSelector),
          attributes: caller.attributes ?? {},
        },
        ctx.signal,
      );
      return { spiffeId: doc.spiffeId, document: doc.token, expiresAt: doc.expiresAt };
    },
  };
}

function checkSpiffeId(id: string): void {
  if (id === '') return;
  if (Buffer.byteLength(id) > MAX_SPIFFE_ID_BYTES)
    throw new InvalidArgumentError(`invalid spiffe_id: longer than ${MAX_SPIFFE_ID_BYTES} bytes`);
  try {
    SpiffeId.parse(id);
  } catch (e) {
    throw new InvalidArgumentError(`invalid spiffe_id: ${(e as Error).message}`);
  }
}

/** The entry asked for if the caller has it; its first when none was named. */
function pickEntry(entries: readonly Entry[], spiffeId: string): Entry {
  const entry = spiffeId === '' ? entries[0] : entries.find((e) => e.spiffeId === spiffeId);
  if (entry) return entry;
  if (spiffeId === '' || entries.length === 0)
    throw new PermissionDeniedError('no identity issued');
  throw new PermissionDeniedError(`no identity issued for ${spiffeId} to this caller`);
}
