import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileAgentConfig } from '../config/compile.ts';

const base = { trust_domain: 'example.org', server_address: '127.0.0.1:8081' };
const compile = (cloud: Record<string, unknown>) =>
  compileAgentConfig(
    { ...base, cloud },
    {},
    {},
    { dataDir: '/var/lib/tessera', socketPath: '/tmp/a.sock' },
  );
const file = (p: string) => ({
  spiffe_id: 'spiffe://example.org/web',
  audience: 'sts.amazonaws.com',
  path: p,
  uid: 1000,
  gid: 1000,
});

describe('token file paths at config load', () => {
  it('accepts files inside the data directory or cloud.token_dir, mode 0600 by default', () => {
    const c = compile({
      token_dir: '/run/tessera-tokens',
      token_files: [
        file('/var/lib/tessera/tokens/web.jwt'),
        { ...file('/run/tessera-tokens/w.jwt'), mode: '0640' },
      ],
      aws_container_token_files: [{ path: '/run/tessera-tokens/c', uid: 1000, gid: 1000 }],
    });
    assert.equal(c.cloud.token_files[0]?.mode, 0o600);
    assert.equal(c.cloud.token_files[1]?.mode, 0o640);
  });

  it('refuses a path outside, naming the key and the path', () => {
    assert.throws(
      () => compile({ token_files: [file('/etc/shadow')] }),
      /config: cloud\.token_files\.0\.path: \/etc\/shadow is outside the agent's data directory \/var\/lib\/tessera/,
    );
    assert.throws(
      () =>
        compile({
          aws_container_token_files: [{ path: '/var/lib/tessera/../../etc/x', uid: 0, gid: 0 }],
        }),
      /cloud\.aws_container_token_files\.0\.path: .* is not a normalised absolute path/,
    );
    assert.throws(() => compile({ token_files: [file('/var/lib/tessera')] }), /outside/);
    assert.throws(
      () => compile({ token_files: [file('relative/x')] }),
      /not a normalised absolute path/,
    );
  });

  it('refuses other modes, duplicate paths and bad SPIFFE IDs', () => {
    assert.throws(
      () => compile({ token_files: [{ ...file('/var/lib/tessera/a'), mode: '0644' }] }),
      /cloud\.token_files\.0\.mode/,
    );
    assert.throws(
      () => compile({ token_files: [file('/var/lib/tessera/a'), file('/var/lib/tessera/a')] }),
      /listed twice/,
    );
    assert.throws(
      () => compile({ token_files: [{ ...file('/var/lib/tessera/a'), spiffe_id: 'http://x' }] }),
      /cloud\.token_files\.0\.spiffe_id/,
    );
  });
});
