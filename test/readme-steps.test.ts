// The README test's reading of shell blocks: continuation lines, comments, exports, what runs in
// the background and what is skipped, and `npm start`'s printed next commands.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nextCommands, placeholders, readmeSteps } from './helpers/readme-steps.ts';

const fence = '```';

describe('readmeSteps', () => {
  it('joins continued lines, drops comments, and classifies each command', () => {
    const md = [
      'Text with `bin/tessera inline` is not a command.',
      `${fence}sh`,
      'npm ci && npm start     # a comment',
      'npm ci && npm test',
      '# a whole-line comment',
      'bin/tessera server run --trust-domain example.org',
      "bin/tessera trust-policy create --condition 'a # not a comment' \\",
      '  --name x',
      'export SPIFFE_ENDPOINT_SOCKET=unix:///tmp/a.sock   # why',
      'bin/tessera svid watch',
      fence,
      `${fence}yaml`,
      'key: value',
      fence,
    ].join('\n');
    assert.deepEqual(
      readmeSteps(md).map((s) => [s.kind, 'command' in s ? s.command : `${s.name}=${s.value}`]),
      [
        ['background', 'npm start'],
        ['skip', 'npm test'],
        ['background', 'bin/tessera server run --trust-domain example.org'],
        ['run', "bin/tessera trust-policy create --condition 'a # not a comment' --name x"],
        ['export', 'SPIFFE_ENDPOINT_SOCKET=unix:///tmp/a.sock'],
        ['background', 'bin/tessera svid watch'],
      ],
    );
  });

  it("reads npm start's next commands and the placeholders a command holds", () => {
    const out =
      'ready\n\nNext, in another terminal:\n  export A=b\n  bin/tessera svid fetch\nCtrl-C stops both.';
    assert.deepEqual(
      nextCommands(out).map((s) => s.kind),
      ['export', 'run'],
    );
    assert.deepEqual(
      placeholders('x --parent-id <agent SPIFFE ID printed above> <token> $(id -u)'),
      ['agent SPIFFE ID printed above', 'token'],
    );
  });
});
