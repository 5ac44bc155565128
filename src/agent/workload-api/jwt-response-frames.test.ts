// Encoded FetchJWTSVID answers kept per token (jwt-response-frames.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromBinary } from '@bufbuild/protobuf';
import { JWTSVIDResponseSchema } from '../../../proto/gen/spiffe/workload_pb.js';
import { JwtResponseFrames } from './jwt-response-frames.ts';

const item = (token: string, hint = 'h') => ({ spiffeId: 'spiffe://td/a', token, hint });
const decode = (frame: Buffer) => {
  assert.equal(frame[0], 0);
  assert.equal(frame.readUInt32BE(1), frame.byteLength - 5);
  return fromBinary(JWTSVIDResponseSchema, frame.subarray(5));
};

describe('JWT-SVID answer frames', () => {
  it('encodes the answer once per token and hands the same frame back', () => {
    const frames = new JwtResponseFrames();
    const a = frames.frame([item('t1')]);
    assert.equal(frames.frame([item('t1')]), a);
    const res = decode(a);
    assert.equal(res.svids.length, 1);
    assert.equal(res.svids[0]!.svid, 't1');
    assert.equal(res.svids[0]!.spiffeId, 'spiffe://td/a');
    assert.equal(res.svids[0]!.hint, 'h');
  });

  it('a different hint or SPIFFE ID for the same token is encoded afresh', () => {
    const frames = new JwtResponseFrames();
    const a = frames.frame([item('t1', 'h1')]);
    const b = frames.frame([item('t1', 'h2')]);
    assert.notEqual(a, b);
    assert.equal(decode(b).svids[0]!.hint, 'h2');
  });

  it('several SVIDs: unique hints, as the Connect route answers', () => {
    const frames = new JwtResponseFrames();
    const res = decode(frames.frame([item('t1', 'same'), item('t2', 'same'), item('t3', '')]));
    assert.deepEqual(
      res.svids.map((s) => s.svid),
      ['t1', 't3'],
    );
  });

  it('is bounded', () => {
    const frames = new JwtResponseFrames(3);
    for (let i = 0; i < 10; i++) frames.frame([item(`t${i}`)]);
    assert.ok(frames.size <= 3);
  });
});
