import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidArgumentError } from './errors.ts';
import {
  DEFAULT_AGENT_SOCKET,
  defaultAgentDataDir,
  defaultDataRoot,
  defaultServerDataDir,
} from './defaults.ts';

test('TESSERA_HOME, else XDG_DATA_HOME/tessera, else HOME/.local/share/tessera', () => {
  const env = { TESSERA_HOME: '/srv/t/', XDG_DATA_HOME: '/x', HOME: '/home/u' };
  assert.equal(defaultServerDataDir(env, '/nohome'), '/srv/t/server');
  assert.equal(defaultAgentDataDir(env, '/nohome'), '/srv/t/agent');
  assert.equal(defaultDataRoot({ XDG_DATA_HOME: '/x', HOME: '/home/u' }, '/p'), '/x/tessera');
  assert.equal(defaultDataRoot({ HOME: '/home/u' }, '/p'), '/home/u/.local/share/tessera');
  // HOME unset: the home directory the caller looked up (os.homedir()).
  assert.equal(defaultServerDataDir({}, '/p'), '/p/.local/share/tessera/server');
});

test('never relative to the working directory', () => {
  // The XDG spec: a relative XDG_DATA_HOME is invalid and ignored.
  assert.equal(
    defaultDataRoot({ XDG_DATA_HOME: 'rel', HOME: '/h' }, '/p'),
    '/h/.local/share/tessera',
  );
  assert.throws(
    () => defaultDataRoot({ TESSERA_HOME: 'rel/dir' }, '/p'),
    (e) =>
      e instanceof InvalidArgumentError && /TESSERA_HOME must be an absolute path/.test(e.message),
  );
  assert.throws(() => defaultDataRoot({ HOME: 'h' }, '/p'), /HOME must be an absolute path/);
});

test('the Workload API socket has one fixed default, reachable by every user', () => {
  assert.equal(DEFAULT_AGENT_SOCKET, '/tmp/tessera-agent/public/api.sock');
});
