// The iptables rules that send selected workloads' outbound TCP connections to the agent's
// transparent listener (`tessera agent proxy rules`; docs/injection.md, "Transparent redirect").
// Pure: the CLI prints them, an operator (or a test, inside its network namespace) applies them.
//
// nat OUTPUT sees locally generated connections only, and REDIRECT sends them to the loopback
// address of the listener's family (127.0.0.1 / ::1) on its port, keeping the original
// destination for SO_ORIGINAL_DST. Loops are cut before any selection: the agent's own
// connections (its upstream connections, a passthrough tunnel) and loopback traffic (to the
// agent's listeners, the credential API, local listeners) return untouched.

export const CHAIN = 'TESSERA_TRANSPARENT';

export interface TransparentRulesInput {
  /** The listener's port (REDIRECT --to-ports). */
  readonly port: number;
  /** The uid the agent runs as: its connections are never redirected. */
  readonly agentUid: number;
  readonly uids: readonly number[];
  readonly cgroups: readonly string[];
  readonly ipv4: boolean;
  readonly ipv6: boolean;
}

/** A shell script (one command a line, comments explain); throws on inputs it cannot honour. */
export function transparentRules(i: TransparentRulesInput): string {
  if (!Number.isInteger(i.port) || i.port < 1 || i.port > 65535) {
    throw new Error('the transparent listener needs a fixed port (proxy.transparent_listen)');
  }
  if (i.uids.length === 0 && i.cgroups.length === 0) {
    throw new Error(
      'no workload is selected: set proxy.transparent.uids or proxy.transparent.cgroups',
    );
  }
  if (i.uids.includes(i.agentUid)) {
    throw new Error(
      `uid ${i.agentUid} is the agent's own: redirecting it would loop its upstream connections`,
    );
  }
  for (const c of i.cgroups) {
    if (!/^\/[A-Za-z0-9_.@:/-]{0,1023}$/.test(c)) throw new Error(`not a cgroup v2 path: ${c}`);
  }
  const lines = [
    '# Tessera transparent redirect (tessera agent proxy rules). Apply as root; remove with:',
  ];
  const families: [string, string][] = [];
  if (i.ipv4) families.push(['iptables', '127.0.0.0/8']);
  if (i.ipv6) families.push(['ip6tables', '::1/128']);
  for (const [cmd] of families) {
    lines.push(
      `#   ${cmd} -t nat -D OUTPUT -p tcp -j ${CHAIN}; ${cmd} -t nat -F ${CHAIN}; ${cmd} -t nat -X ${CHAIN}`,
    );
  }
  for (const [cmd, loopback] of families) {
    const add = `${cmd} -t nat -A ${CHAIN}`;
    lines.push(
      '',
      `${cmd} -t nat -N ${CHAIN}`,
      `# The agent's own connections (upstream, passthrough) are never redirected: no loop.`,
      `${add} -m owner --uid-owner ${i.agentUid} -j RETURN`,
      '# Loopback traffic (the agent, its listeners, local services) stays as it is.',
      `${add} -d ${loopback} -j RETURN`,
    );
    if (i.uids.length > 0) lines.push('# Selected by user id:');
    for (const uid of i.uids) {
      lines.push(`${add} -p tcp -m owner --uid-owner ${uid} -j REDIRECT --to-ports ${i.port}`);
    }
    if (i.cgroups.length > 0) lines.push('# Selected by cgroup (v2 path):');
    for (const path of i.cgroups) {
      lines.push(`${add} -p tcp -m cgroup --path ${path} -j REDIRECT --to-ports ${i.port}`);
    }
    lines.push(`${cmd} -t nat -A OUTPUT -p tcp -j ${CHAIN}`);
  }
  return `${lines.join('\n')}\n`;
}
