// The agent's release call: the server's answer as the cache keeps it, errors with their codes,
// and one more try on the next server address when the link failed over.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import {
  ReleaseCredentialResponseSchema,
  type ReleaseCredentialRequest,
} from '../../../proto/gen/tessera/v1/release_pb.js';
import { linkReleaser, type ReleaseLink, type ReleaseParams } from './release-client.ts';

const params: ReleaseParams = {
  entryId: 'e1',
  selectors: ['unix:uid:1000'],
  attributes: { 'unix.uid': '1000' },
  server: 'db',
  correlationId: 'corr-1',
};

/** A link over addresses a, b, …: each call answers with `answer(address)`; Unavailable moves on. */
function link(answer: (address: string, req: ReleaseCredentialRequest) => unknown) {
  const addresses = ['a:1', 'b:1'];
  let at = 0;
  const calls: string[] = [];
  const l: ReleaseLink = {
    get address() {
      return addresses[at]!;
    },
    clients: () => {
      const address = addresses[at]!;
      return {
        address,
        release: {
          releaseCredential: async (req: ReleaseCredentialRequest) => {
            calls.push(address);
            try {
              const r = answer(address, req);
              if (r instanceof Error) throw r;
              return create(ReleaseCredentialResponseSchema, r as object);
            } catch (e) {
              if (ConnectError.from(e).code === Code.Unavailable) at = Math.min(at + 1, 1);
              throw e;
            }
          },
        },
      } as unknown as ReturnType<ReleaseLink['clients']>;
    },
  };
  return { l, calls };
}

describe('linkReleaser', () => {
  it('sends the ask and turns a credential into what the cache keeps', async () => {
    let seen: ReleaseCredentialRequest | undefined;
    const { l } = link((_, req) => {
      seen = req;
      return {
        result: {
          case: 'credential',
          value: {
            value: { case: 'password', value: { username: 'app', password: 'pw' } },
            expiresAt: 1_900_000_000_000n,
            leaseId: 'lease-1',
            client: 'spiffe://example.org/web',
            server: 'db',
            present: 'postgres-password',
            policy: 'web-db',
            credentialProvider: 'pg',
            correlationId: 'corr-1',
          },
        },
      };
    });
    const out = await linkReleaser(l, 1000)(params, new AbortController().signal);
    assert.equal(seen?.entryId, 'e1');
    assert.deepEqual(seen?.selectors, ['unix:uid:1000']);
    assert.deepEqual(seen?.attributes, { 'unix.uid': '1000' });
    assert.equal(seen?.correlationId, 'corr-1');
    assert.deepEqual(out, {
      kind: 'released',
      released: {
        credential: {
          value: { kind: 'password', username: 'app', password: 'pw' },
          expiresAt: 1_900_000_000_000,
          leaseId: 'lease-1',
        },
        spiffeId: 'spiffe://example.org/web',
        server: 'db',
        present: 'postgres-password',
        policy: 'web-db',
        credentialProvider: 'pg',
        correlationId: 'corr-1',
      },
    });
  });

  it('turns a denial into a denial, and a static credential into one without expiry', async () => {
    const denied = link(() => ({
      result: {
        case: 'denial',
        value: {
          reason: 'no-matching-policy',
          policy: '',
          failedCondition: '',
          correlationId: 'c',
        },
      },
    }));
    assert.deepEqual(await linkReleaser(denied.l, 1000)(params, new AbortController().signal), {
      kind: 'denied',
      denial: { reason: 'no-matching-policy', policy: '', failedCondition: '', correlationId: 'c' },
    });
    const token = link(() => ({
      result: { case: 'credential', value: { value: { case: 'token', value: 't' } } },
    }));
    const out = await linkReleaser(token.l, 1000)(params, new AbortController().signal);
    assert.equal(out.kind === 'released' && out.released.credential.expiresAt, null);
  });

  it('tries the next server once when the first does not answer', async () => {
    const { l, calls } = link((address) =>
      address === 'a:1'
        ? new ConnectError('connect ECONNREFUSED', Code.Unavailable)
        : { result: { case: 'credential', value: { value: { case: 'token', value: 't' } } } },
    );
    const out = await linkReleaser(l, 1000)(params, new AbortController().signal);
    assert.equal(out.kind, 'released');
    assert.deepEqual(calls, ['a:1', 'b:1']);
  });

  it('is unavailable naming the address when no server answers', async () => {
    const { l, calls } = link(() => new ConnectError('connect ECONNREFUSED', Code.Unavailable));
    await assert.rejects(linkReleaser(l, 1000)(params, new AbortController().signal), {
      code: 'unavailable',
      message: 'the Tessera server (b:1) does not answer: connect ECONNREFUSED',
    });
    assert.deepEqual(calls, ['a:1', 'b:1']);
  });

  it('keeps the code of a refusal, and names a server without credential release', async () => {
    const refused = link(
      () => new ConnectError('entry e1 is not this agent’s', Code.PermissionDenied),
    );
    await assert.rejects(linkReleaser(refused.l, 1000)(params, new AbortController().signal), {
      code: 'permission_denied',
      message: 'the Tessera server refused the release: entry e1 is not this agent’s',
    });
    const old = link(() => new ConnectError('HTTP 404', Code.Unimplemented));
    await assert.rejects(linkReleaser(old.l, 1000)(params, new AbortController().signal), {
      code: 'unimplemented',
      message:
        'the Tessera server (a:1) does not offer credential release (a server older than this agent?)',
    });
  });
});
