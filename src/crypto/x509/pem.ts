// PEM <-> DER. Parsing is strict about labels and base64 so a typo in a config file is an error
// rather than a silently empty chain.
import { InvalidArgumentError } from '../../core/errors.ts';

export function derToPem(der: Uint8Array, label = 'CERTIFICATE'): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

const BLOCK_RE = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;

/** Every PEM block with `label` (default CERTIFICATE), in order. Other labels are skipped. */
export function pemToDers(pem: string, label = 'CERTIFICATE'): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const m of pem.matchAll(BLOCK_RE)) {
    if (m[1] !== m[3])
      throw new InvalidArgumentError(`PEM block BEGIN ${m[1]} ends with END ${m[3]}`);
    if (m[1] !== label) continue;
    const body = (m[2] ?? '').replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body) || body.length % 4 !== 0) {
      throw new InvalidArgumentError(`PEM block ${label} #${out.length + 1} has invalid base64`);
    }
    out.push(new Uint8Array(Buffer.from(body, 'base64')));
  }
  return out;
}
