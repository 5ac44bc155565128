import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../../core/errors.ts';
import { children, readNode, readOid, readRoot, readTime, readSmallInteger } from './der-reader.ts';
import { oid, seq, smallInteger, time, tlv, unsignedInteger, TAG } from './der-writer.ts';

describe('DER writer/reader', () => {
  it('round-trips OIDs, integers and times', () => {
    const d = seq(
      oid('1.2.840.10045.4.3.2'),
      smallInteger(300),
      time(Date.UTC(2030, 0, 2, 3, 4, 5)),
      time(Date.UTC(2051, 5, 6)),
    );
    const [o, i, t1, t2] = children(d, readRoot(d));
    assert.equal(readOid(d, o!), '1.2.840.10045.4.3.2');
    assert.equal(readSmallInteger(d, i!), 300);
    assert.equal(t1!.tag, TAG.UTC_TIME);
    assert.equal(readTime(d, t1!), Date.UTC(2030, 0, 2, 3, 4, 5));
    assert.equal(t2!.tag, TAG.GENERALIZED_TIME);
    assert.equal(readTime(d, t2!), Date.UTC(2051, 5, 6));
  });

  it('encodes unsigned integers minimally', () => {
    assert.deepEqual([...unsignedInteger(Uint8Array.of(0, 0, 0x7f))], [2, 1, 0x7f]);
    assert.deepEqual([...unsignedInteger(Uint8Array.of(0x80))], [2, 2, 0, 0x80]);
  });

  it('uses long-form lengths above 127 bytes', () => {
    const d = tlv(TAG.OCTET_STRING, new Uint8Array(300));
    assert.deepEqual([...d.subarray(0, 4)], [0x04, 0x82, 0x01, 0x2c]);
    assert.equal(readRoot(d).end, d.length);
  });

  it('rejects truncated, indefinite, non-minimal and trailing input with DerError', () => {
    const bad = [
      Uint8Array.of(0x30),
      Uint8Array.of(0x30, 0x05, 0x02, 0x01),
      Uint8Array.of(0x30, 0x80, 0x00, 0x00),
      Uint8Array.of(0x04, 0x81, 0x01, 0x00),
      Uint8Array.of(0x05, 0x00, 0x00),
      Uint8Array.of(0x1f, 0x01, 0x00),
    ];
    for (const b of bad) assert.throws(() => readRoot(b), InvalidArgumentError);
  });

  it('never reads past a parent element', () => {
    const d = Uint8Array.of(0x30, 0x02, 0x04, 0x05, 0x00, 0x00, 0x00, 0x00);
    assert.throws(() => readNode(d, 2, 4), /truncated/);
  });
});
