// Signed identity documents (docs/identity-document.md): the server is the authority. For an
// agent asking on behalf of an attested workload, it checks, in order, that the entry is one the
// agent serves, that the workload's attested selectors match the entry (as credential release
// does), and that the entry's condition holds over the workload's facts; then it signs the
// entry's SPIFFE ID with only the attributes the entry discloses. Every answer is audited as
// `identity.document` (the token never is); a document that cannot be audited is not returned.
import type { Clock } from '../../core/clock.ts';
import { disclosedAttributes } from '../../core/disclosure.ts';
import type { Entry } from '../../core/entry.ts';
import {
  FailedPreconditionError,
  InvalidArgumentError,
  PermissionDeniedError,
} from '../../core/errors.ts';
import type { AttestedNode } from '../../core/node.ts';
import { formatSelector, parseSelector } from '../../core/selector.ts';
import type { RequestContext } from '../../core/caller.ts';
import type { Auditor } from '../audit/auditor.ts';
import { checkAttributes, MAX_RELEASE_SELECTORS } from '../broker/release-input.ts';
import { evaluateEntryCondition } from '../posture/entry-condition.ts';
import { workloadFacts, type PostureLookup } from '../posture/workload-facts.ts';
import type { EntryIndex } from '../registration/entry-index.ts';
import { checkAudience, type JwtSvid, type Minter } from './minter.ts';

/** Documents are short-lived: what they say is only as fresh as their `exp`. */
export const IDENTITY_DOCUMENT_MAX_TTL_MS = 5 * 60_000;
const MAX_ENTRY_ID = 64;

export interface IdentityDocumentRequest {
  readonly entryId: string;
  readonly audience: readonly string[];
  /** `type:value`, the workload's attested selectors (untrusted: the agent's word). */
  readonly selectors: readonly string[];
  readonly attributes: Readonly<Record<string, string>>;
}

export interface IdentityDocumentOptions {
  readonly auditor: Auditor;
  readonly clock: Clock;
  readonly minter: Minter;
  readonly index: EntryIndex;
  readonly posture: PostureLookup;
  /** The JWT-SVID default TTL; documents take the shorter of it (or the entry's) and 5 min. */
  readonly defaultJwtTtlMs: number;
}

export class IdentityDocumentService {
  readonly #o: IdentityDocumentOptions;
  constructor(o: IdentityDocumentOptions) {
    this.#o = o;
  }

  async issue(
    ctx: RequestContext,
    node: AttestedNode,
    req: IdentityDocumentRequest,
  ): Promise<JwtSvid> {
    // Malformed asks are refused before anything is looked up (and so are not audited).
    if (req.entryId === '' || req.entryId.length > MAX_ENTRY_ID)
      throw new InvalidArgumentError(`entry_id: 1..${MAX_ENTRY_ID} characters`);
    checkAudience(req.audience);
    if (req.selectors.length > MAX_RELEASE_SELECTORS)
      throw new InvalidArgumentError(`selectors: at most ${MAX_RELEASE_SELECTORS}`);
    const attested = new Set(req.selectors.map((s) => formatSelector(parseSelector(s))));
    const attributes = checkAttributes(req.attributes);

    const entry = this.#entryOf(node, req.entryId, attested);
    if (typeof entry === 'string') throw await this.#refuse(ctx, node, req, entry, 'denied');
    const facts = workloadFacts(attributes, node, this.#o.posture);
    const verdict = evaluateEntryCondition(entry, facts);
    if (!verdict.allowed) throw await this.#refuse(ctx, node, req, verdict.reason, 'condition');

    const paths = entry.disclose ?? [];
    const entryTtl = entry.jwtSvidTtl > 0 ? entry.jwtSvidTtl * 1000 : this.#o.defaultJwtTtlMs;
    const ttl = Math.min(entryTtl, IDENTITY_DOCUMENT_MAX_TTL_MS);
    const doc = await this.#o.minter.identityDocument(
      entry.spiffeId,
      req.audience,
      ttl,
      disclosedAttributes(facts, paths),
    );
    await this.#o.auditor.log(ctx, {
      action: 'identity.document',
      target: entry.spiffeId,
      outcome: 'success',
      details: {
        agent: node.spiffeId,
        entryId: entry.id,
        audience: [...req.audience],
        disclosed: [...paths],
        expiresAt: doc.expiresAt,
      },
    });
    return doc;
  }

  /** The entry, or why the agent may not ask for it on behalf of this workload. */
  #entryOf(node: AttestedNode, entryId: string, attested: ReadonlySet<string>): Entry | string {
    const nodeSelectors = new Set(node.selectors.map(formatSelector));
    const entry = this.#o.index.authorizedEntry(
      node.spiffeId,
      nodeSelectors,
      entryId,
      this.#o.clock.now(),
    );
    if (!entry) return `agent is not authorized for entry "${entryId}"`;
    const missing = entry.selectors.map(formatSelector).filter((s) => !attested.has(s));
    if (missing.length > 0)
      return `the attested selectors do not match entry "${entryId}" (missing ${missing.length} of its selectors)`;
    return entry;
  }

  async #refuse(
    ctx: RequestContext,
    node: AttestedNode,
    req: IdentityDocumentRequest,
    reason: string,
    kind: 'denied' | 'condition',
  ): Promise<Error> {
    await this.#o.auditor.log(ctx, {
      action: 'identity.document',
      target: node.spiffeId,
      outcome: 'denied',
      details: { agent: node.spiffeId, entryId: req.entryId, reason },
    });
    return kind === 'condition'
      ? new FailedPreconditionError(`entry ${req.entryId}: ${reason}`)
      : new PermissionDeniedError(reason);
  }
}
