// The agent's call to the server's SvidService/NewIdentityDocument over its mTLS link: the server
// re-checks the entry, the workload's selectors and the entry's condition, and signs. Its refusal
// keeps its code and message; a server that does not answer is `unavailable` naming the address.
import { Code, ConnectError } from '@connectrpc/connect';
import { TesseraError, UnavailableError } from '../../core/errors.ts';
import { errorCodeFromTransport } from '../../wire/connect-codes.ts';
import type { ServerClients } from '../identity/server-link.ts';

export interface DocumentParams {
  readonly entryId: string;
  readonly audience: readonly string[];
  /** `type:value`. */
  readonly selectors: readonly string[];
  readonly attributes: Readonly<Record<string, string>>;
}

export interface SignedDocument {
  readonly spiffeId: string;
  readonly token: string;
  /** Unix seconds. */
  readonly expiresAt: bigint;
}

export type DocumentSigner = (p: DocumentParams, signal: AbortSignal) => Promise<SignedDocument>;

export interface DocumentLink {
  clients(): Pick<ServerClients, 'svid' | 'address'>;
}

export function linkDocumentSigner(link: DocumentLink, timeoutMs: number): DocumentSigner {
  return async (p, signal) => {
    const c = link.clients();
    try {
      const res = await c.svid.newIdentityDocument(
        {
          entryId: p.entryId,
          audience: [...p.audience],
          selectors: [...p.selectors],
          attributes: { ...p.attributes },
        },
        { signal, timeoutMs },
      );
      return { spiffeId: res.spiffeId, token: res.token, expiresAt: res.expiresAt };
    } catch (e) {
      throw toError(e, c.address);
    }
  };
}

function toError(e: unknown, address: string): Error {
  if (e instanceof TesseraError) return e;
  const ce = ConnectError.from(e);
  if (ce.code === Code.Unavailable || ce.code === Code.DeadlineExceeded)
    return new UnavailableError(
      `the Tessera server (${address}) does not answer: ${ce.rawMessage}`,
      {
        cause: e,
      },
    );
  if (ce.code === Code.Unimplemented)
    return new TesseraError(
      'unimplemented',
      `the Tessera server (${address}) does not sign identity documents (a server older than this agent?)`,
      { cause: e },
    );
  const code = errorCodeFromTransport(ce.code) ?? 'internal';
  return new TesseraError(
    code,
    `the Tessera server refused the identity document: ${ce.rawMessage}`,
    {
      cause: e,
    },
  );
}
