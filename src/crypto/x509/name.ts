// X.501 Name encoding. Only the attributes Tessera writes; PrintableString for C and
// serialNumber (their ASN.1 types), UTF8String for the rest (RFC 5280 §4.1.2.6).
import { InvalidArgumentError } from '../../core/errors.ts';
import { oid, printable, seq, set, utf8 } from '../der/der-writer.ts';
import { OID } from '../der/oids.ts';

export type NameAttribute = 'C' | 'O' | 'OU' | 'CN' | 'serialNumber';
/** Relative distinguished names in order, one attribute each. */
export type DistinguishedName = ReadonlyArray<readonly [NameAttribute, string]>;

const attrs: Record<NameAttribute, { oid: Uint8Array; printable: boolean; max: number }> = {
  C: { oid: oid(OID.countryName), printable: true, max: 2 },
  O: { oid: oid(OID.organizationName), printable: false, max: 64 },
  OU: { oid: oid(OID.organizationalUnitName), printable: false, max: 64 },
  CN: { oid: oid(OID.commonName), printable: false, max: 64 },
  serialNumber: { oid: oid(OID.serialNumber), printable: true, max: 64 },
};

const PRINTABLE_RE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

export function encodeName(name: DistinguishedName): Buffer {
  return seq(...name.map(([k, v]) => encodeRdn(k, v)));
}

function encodeRdn(k: NameAttribute, v: string): Buffer {
  const a = attrs[k];
  if (a === undefined) throw new InvalidArgumentError(`unsupported name attribute "${String(k)}"`);
  if (v.length === 0 || v.length > a.max) {
    throw new InvalidArgumentError(`name attribute ${k} must have 1-${a.max} characters`);
  }
  if (a.printable && !PRINTABLE_RE.test(v)) {
    throw new InvalidArgumentError(`name attribute ${k} must be a PrintableString`);
  }
  return set(seq(a.oid, a.printable ? printable(v) : utf8(v)));
}
