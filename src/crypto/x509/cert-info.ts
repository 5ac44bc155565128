// Small accessors the server and CLI use for logs, audit and rotation decisions.
import { serialHex } from './certificate-builder.ts';
import { parseCertificate } from './certificate.ts';

/** Serial number as lowercase hex without leading zero bytes (as openssl prints it, minus colons). */
export function certSerialHex(der: Uint8Array): string {
  return serialHex(parseCertificate(der).serial);
}

export function certNotAfter(der: Uint8Array): number {
  return parseCertificate(der).notAfter;
}

export function certNotBefore(der: Uint8Array): number {
  return parseCertificate(der).notBefore;
}
