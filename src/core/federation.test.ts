import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  backoffDelayMs,
  defaultPollPolicy,
  refreshIntervalMs,
  validateFederationInput,
} from './federation.ts';

const input = (over: Record<string, string> = {}) => ({
  trustDomain: 'remote.test',
  bundleEndpointUrl: 'https://remote.test/bundle',
  profile: 'https_web',
  endpointSpiffeId: '',
  ...over,
});

describe('validateFederationInput', () => {
  it('canonicalizes a valid relationship', () => {
    assert.deepEqual(
      validateFederationInput(
        input({
          trustDomain: 'spiffe://remote.test',
          profile: 'https_spiffe',
          endpointSpiffeId: 'spiffe://remote.test/spire/server',
        }),
        'example.org',
      ),
      {
        trustDomain: 'remote.test',
        bundleEndpointUrl: 'https://remote.test/bundle',
        profile: 'https_spiffe',
        endpointSpiffeId: 'spiffe://remote.test/spire/server',
      },
    );
  });

  it('names the field that is wrong', () => {
    const bad: Array<[Record<string, string>, RegExp]> = [
      [{ trustDomain: 'Remote.Test' }, /^trust_domain: /],
      [{ trustDomain: 'example.org' }, /^trust_domain: "example\.org" is this server's own/],
      [{ bundleEndpointUrl: '' }, /^bundle_endpoint_url: required$/],
      [{ bundleEndpointUrl: 'ftp://x/b' }, /^bundle_endpoint_url: must be an https:\/\/ URL/],
      [
        { bundleEndpointUrl: 'https://u:p@x/b' },
        /^bundle_endpoint_url: must not contain user info$/,
      ],
      [
        { bundleEndpointUrl: 'https://x/b#f' },
        /^bundle_endpoint_url: must not contain a fragment$/,
      ],
      [{ bundleEndpointUrl: `https://x/${'a'.repeat(2048)}` }, /^bundle_endpoint_url: longer than/],
      [{ profile: 'web' }, /^profile: must be "https_web" or "https_spiffe", got "web"$/],
      [{ profile: 'https_spiffe' }, /^endpoint_spiffe_id: required for the https_spiffe profile$/],
      [
        { profile: 'https_spiffe', endpointSpiffeId: 'spiffe://other.test/s' },
        /^endpoint_spiffe_id: "spiffe:\/\/other\.test\/s" is not in trust domain "remote\.test"$/,
      ],
      [{ profile: 'https_spiffe', endpointSpiffeId: 'nope' }, /^endpoint_spiffe_id: /],
      [
        { endpointSpiffeId: 'spiffe://remote.test/s' },
        /^endpoint_spiffe_id: only for the https_spiffe/,
      ],
    ];
    for (const [over, message] of bad) {
      assert.throws(() => validateFederationInput(input(over), 'example.org'), {
        name: 'InvalidArgumentError',
        message,
      });
    }
  });
});

describe('poll arithmetic', () => {
  it('clamps the refresh hint and defaults an absent one', () => {
    assert.equal(refreshIntervalMs(undefined), defaultPollPolicy.defaultIntervalMs);
    assert.equal(refreshIntervalMs(0), defaultPollPolicy.defaultIntervalMs);
    assert.equal(refreshIntervalMs(1), defaultPollPolicy.minIntervalMs);
    assert.equal(refreshIntervalMs(60), 60_000);
    assert.equal(refreshIntervalMs(1e12), defaultPollPolicy.maxIntervalMs);
  });

  it('backs off exponentially within [50 %, 100 %] of the step, capped at the interval', () => {
    assert.equal(
      backoffDelayMs(1, 300_000, () => 1),
      5_000,
    );
    assert.equal(
      backoffDelayMs(1, 300_000, () => 0),
      2_500,
    );
    assert.equal(
      backoffDelayMs(3, 300_000, () => 1),
      20_000,
    );
    assert.equal(
      backoffDelayMs(30, 300_000, () => 1),
      300_000,
    );
    assert.equal(
      backoffDelayMs(1e9, 60_000, () => 0.5),
      45_000,
    );
  });
});
