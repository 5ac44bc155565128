// The agent's cloud endpoint address as `tessera cloud env` takes it: the agent's `cloud.listen`
// (`127.0.0.1:PORT` or `[::1]:PORT`), never another host — the SDKs would send the workload's
// identity there.
import { InvalidArgumentError } from '../../core/errors.ts';

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]):(\d{1,5})$/;

/** `http://ADDR` for a loopback HOST:PORT; InvalidArgumentError naming the value otherwise. */
export function agentBaseUrl(agentAddress: string): string {
  const m = LOOPBACK.exec(agentAddress);
  const port = Number(m?.[2]);
  if (!m || port < 1 || port > 65535) {
    throw new InvalidArgumentError(
      `agent address "${agentAddress.slice(0, 80)}": expected the agent's cloud.listen, 127.0.0.1:PORT or [::1]:PORT`,
    );
  }
  return `http://${agentAddress}`;
}
