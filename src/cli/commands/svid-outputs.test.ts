import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileOutputs, signalName } from './svid-outputs.ts';

describe('svid watch outputs', () => {
  it('accepts signal names with or without SIG, in any case', () => {
    assert.equal(signalName('HUP'), 'SIGHUP');
    assert.equal(signalName('sighup'), 'SIGHUP');
    assert.equal(signalName('usr1'), 'SIGUSR1');
    assert.equal(signalName('SIGTERM'), 'SIGTERM');
  });

  it('refuses unknown signals and ones no program can handle', () => {
    for (const s of ['NOPE', 'KILL', 'SIGSTOP', '9', '', 'toString', '__proto__']) {
      assert.throws(() => signalName(s), {
        name: 'InvalidArgumentError',
        message: `--signal: "${s}" is not a signal name to reload with (e.g. HUP, USR1, TERM)`,
      });
    }
  });

  it('compiles the flag combinations', () => {
    assert.deepEqual(compileOutputs({ write: 'd', exec: 'nginx -s reload' }), {
      dir: 'd',
      reload: { kind: 'exec', command: 'nginx -s reload' },
      jwt: undefined,
    });
    assert.deepEqual(compileOutputs({ write: 'd', signal: 'hup', pidFile: 'p' }), {
      dir: 'd',
      reload: { kind: 'signal', signal: 'SIGHUP', pidFile: 'p' },
      jwt: undefined,
    });
    assert.deepEqual(compileOutputs({ jwtAudience: ['a', 'b'], jwtFile: 't' }), {
      dir: undefined,
      reload: { kind: 'none' },
      jwt: { audience: ['a', 'b'], file: 't' },
    });
    assert.throws(() => compileOutputs({ write: 'd', exec: ' ' }), {
      message: '--exec: empty command',
    });
    assert.throws(() => compileOutputs({ pidFile: 'p', write: 'd' }), {
      message: '--signal and --pid-file go together',
    });
    assert.throws(() => compileOutputs({ signal: 'HUP', pidFile: 'p' }), {
      message: '--signal needs --write (it runs after the files are written)',
    });
  });
});
