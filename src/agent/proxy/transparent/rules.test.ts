import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { transparentRules } from './rules.ts';

const base = { port: 15001, agentUid: 998, uids: [1001], cgroups: [], ipv4: true, ipv6: false };

describe('transparentRules', () => {
  it('excludes the agent and loopback before redirecting the selected uids and cgroups', () => {
    const out = transparentRules({ ...base, cgroups: ['/system.slice/app.service'] });
    const commands = out.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    assert.deepEqual(commands, [
      'iptables -t nat -N TESSERA_TRANSPARENT',
      'iptables -t nat -A TESSERA_TRANSPARENT -m owner --uid-owner 998 -j RETURN',
      'iptables -t nat -A TESSERA_TRANSPARENT -d 127.0.0.0/8 -j RETURN',
      'iptables -t nat -A TESSERA_TRANSPARENT -p tcp -m owner --uid-owner 1001 -j REDIRECT --to-ports 15001',
      'iptables -t nat -A TESSERA_TRANSPARENT -p tcp -m cgroup --path /system.slice/app.service -j REDIRECT --to-ports 15001',
      'iptables -t nat -A OUTPUT -p tcp -j TESSERA_TRANSPARENT',
    ]);
    assert.match(out, /^# {3}iptables -t nat -D OUTPUT -p tcp -j TESSERA_TRANSPARENT; /m);
  });

  it('prints ip6tables rules with ::1 as loopback when IPv6 is on', () => {
    const out = transparentRules({ ...base, ipv6: true });
    assert.match(out, /^ip6tables -t nat -A TESSERA_TRANSPARENT -d ::1\/128 -j RETURN$/m);
    assert.match(out, /^ip6tables -t nat -A OUTPUT -p tcp -j TESSERA_TRANSPARENT$/m);
    assert.match(out, /^iptables -t nat -A OUTPUT/m);
  });

  it('refuses what would loop, select nothing or not parse', () => {
    assert.throws(() => transparentRules({ ...base, uids: [998] }), /uid 998 is the agent's own/);
    assert.throws(() => transparentRules({ ...base, uids: [] }), /no workload is selected/);
    assert.throws(() => transparentRules({ ...base, port: 0 }), /needs a fixed port/);
    assert.throws(
      () => transparentRules({ ...base, cgroups: ['/a; rm -rf /'] }),
      /not a cgroup v2 path/,
    );
  });
});
