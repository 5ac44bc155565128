// The trust bundle for the agent's first contact with its server, when the data dir holds none
// yet: a file or an https URL (PEM certificates or a SPIFFE bundle), or nothing (insecure
// bootstrap, or a server already verified by the persisted bundle).
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError } from '../../core/errors.ts';
import { parseSpiffeBundle } from '../../crypto/bundle-format.ts';
import { pemToDers } from '../../crypto/x509/pem.ts';

export interface BootstrapBundleSource {
  readonly trustDomain: string;
  readonly file?: string | undefined;
  readonly url?: string | undefined;
}

const FETCH_TIMEOUT_MS = 10_000;

export async function loadBootstrapBundle(
  s: BootstrapBundleSource,
  signal: AbortSignal,
): Promise<Uint8Array[]> {
  if (s.file)
    return readBundle(await readFile(s.file, { encoding: 'utf8', signal }), s.trustDomain);
  if (s.url) {
    const res = await fetch(s.url, {
      signal: AbortSignal.any([signal, AbortSignal.timeout(FETCH_TIMEOUT_MS)]),
      redirect: 'error',
    });
    if (!res.ok)
      throw new InvalidArgumentError(`trust_bundle_url: ${s.url} answered ${res.status}`);
    return readBundle(await res.text(), s.trustDomain);
  }
  return [];
}

/** A trust bundle file or URL body: PEM certificates or a SPIFFE bundle (JSON). */
export function readBundle(text: string, trustDomain: string): Uint8Array[] {
  const ders = text.trimStart().startsWith('{')
    ? parseSpiffeBundle(text, trustDomain).x509Authorities.map((a) => a.der)
    : pemToDers(text);
  if (ders.length === 0) throw new InvalidArgumentError('trust bundle: no CA certificates found');
  return ders;
}
