// Cloud token-service URLs `tessera cloud env` writes into a workload's environment or
// credential config (`--token-url`, `--authority-host`): the SDK sends the workload's JWT-SVID
// there, so only https, or http to loopback (a local stand-in), without userinfo, query or
// fragment — the rule the server's credential providers apply to their endpoints.
import { InvalidArgumentError } from '../../core/errors.ts';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

export function checkEndpointUrl(flag: string, value: string, httpsOnly = false): void {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new InvalidArgumentError(`${flag}: "${value.slice(0, 120)}" is not a URL`);
  }
  const ok =
    (u.protocol === 'https:' ||
      (!httpsOnly && u.protocol === 'http:' && LOOPBACK_HOSTS.has(u.hostname))) &&
    u.username === '' &&
    u.password === '' &&
    u.search === '' &&
    u.hash === '' &&
    value.length <= 2048;
  if (!ok) {
    throw new InvalidArgumentError(
      `${flag}: "${value.slice(0, 120)}" must be an https:// URL${httpsOnly ? '' : ' (http:// only to 127.0.0.1, [::1] or localhost)'} without userinfo, query or fragment`,
    );
  }
}
