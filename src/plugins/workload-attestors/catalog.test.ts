import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WORKLOAD_SELECTOR_TYPES } from '../../core/selector.ts';
import { builtinWorkloadAttestors, createWorkloadAttestors } from './catalog.ts';

describe('workload attestor catalog', () => {
  it('lists the built-ins explicitly', () => {
    assert.deepEqual(Object.keys(builtinWorkloadAttestors), ['unix', 'docker', 'k8s']);
  });

  it('agrees with the selector types core lists for the CLI (entry create warnings)', () => {
    // Each attestor's selectors carry its own type (see each attestor's tests).
    const types = createWorkloadAttestors(
      { unix: null, docker: null, k8s: { node_name: 'node-1' } },
      { procRoot: '/proc', env: {} },
    ).map((a) => a.type);
    assert.deepEqual(types, Object.keys(builtinWorkloadAttestors));
    assert.deepEqual([...WORKLOAD_SELECTOR_TYPES].sort(), [...types].sort());
  });

  it('builds the configured attestors in config order, defaulting a bare entry', () => {
    const attestors = createWorkloadAttestors(
      { docker: { env_keys: ['APP_ENV'] }, unix: null, k8s: { node_name: 'node-1' } },
      { procRoot: '/proc', env: {} },
    );
    assert.deepEqual(
      attestors.map((a) => a.type),
      ['docker', 'unix', 'k8s'],
    );
    assert.deepEqual(createWorkloadAttestors({}, {}), []);
  });

  it('names the key path of a bad value', () => {
    assert.throws(() => createWorkloadAttestors({ docker: { env_keys: 'APP_ENV' } }, {}), {
      name: 'InvalidArgumentError',
      message:
        'config: workload_attestors.docker.env_keys: Invalid input: expected array, received string',
    });
    assert.throws(() => createWorkloadAttestors({ docker: { env_keys: ['OK', 'A=B'] } }, {}), {
      message:
        'config: workload_attestors.docker.env_keys.1: expected an environment variable name',
    });
    assert.throws(() => createWorkloadAttestors({ unix: { hash: false } }, {}), {
      message: 'config: workload_attestors.unix: unknown key "hash"',
    });
    assert.throws(() => createWorkloadAttestors({ unix: 'yes' }, {}), {
      message: 'config: workload_attestors.unix: Invalid input: expected object, received string',
    });
  });

  it('rejects an unknown attestor type, including inherited property names', () => {
    for (const type of ['systemd', 'toString', '__proto__']) {
      const config = JSON.parse(`{"${type}": {}}`) as Record<string, unknown>;
      assert.throws(() => createWorkloadAttestors(config, {}), {
        name: 'InvalidArgumentError',
        message: `config: workload_attestors: unknown workload attestor "${type}" (built-in: unix, docker, k8s)`,
      });
    }
  });

  it('reports a factory refusal under the attestor key', () => {
    assert.throws(() => createWorkloadAttestors({ k8s: {} }, { env: {} }), {
      name: 'InvalidArgumentError',
      message:
        'config: workload_attestors.k8s: the kubelet address is unknown: set kubelet_url or node_name, or the NODE_NAME environment variable',
    });
  });
});
