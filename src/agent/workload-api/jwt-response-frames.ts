// FetchJWTSVID answers as gRPC frames (flag byte, length, JWTSVIDResponse), encoded once per
// token: a cache hit repeats the same (SPIFFE ID, token, hint) until the token is refreshed, so
// its frame is kept beside it instead of being encoded again on every call. Bounded; a token
// refreshed at half its lifetime simply leaves its frame behind, dropped at the next overflow.
import { create, toBinary } from '@bufbuild/protobuf';
import { JWTSVIDResponseSchema } from '../../../proto/gen/spiffe/workload_pb.js';
import { grpcFrame } from './fast-grpc.ts';
import type { JwtSvidItem } from './identity-source.ts';
import { uniqueHints, usableHint } from './responses.ts';

interface Kept {
  readonly spiffeId: string;
  readonly hint: string;
  readonly frame: Buffer;
}

export class JwtResponseFrames {
  readonly #max: number;
  /** By token (one SVID per answer, the common case; several are encoded every time). */
  readonly #frames = new Map<string, Kept>();

  constructor(max = 1024) {
    this.#max = max;
  }

  /** The framed answer for these SVIDs (as fetchJwtSvid answers: unique hints, usable hints). */
  frame(svids: readonly JwtSvidItem[]): Buffer {
    if (svids.length !== 1) return encode(svids);
    const s = svids[0]!;
    const kept = this.#frames.get(s.token);
    if (kept !== undefined && kept.spiffeId === s.spiffeId && kept.hint === s.hint) {
      return kept.frame;
    }
    const frame = encode(svids);
    if (this.#frames.size >= this.#max) this.#frames.clear();
    this.#frames.set(s.token, { spiffeId: s.spiffeId, hint: s.hint, frame });
    return frame;
  }

  get size(): number {
    return this.#frames.size;
  }
}

/** The JWTSVIDResponse of fetchJwtSvid (handlers.ts), framed. */
export function encode(svids: readonly JwtSvidItem[]): Buffer {
  const out = toBinary(
    JWTSVIDResponseSchema,
    create(JWTSVIDResponseSchema, {
      svids: uniqueHints(svids).map((s) => ({
        spiffeId: s.spiffeId,
        svid: s.token,
        hint: usableHint(s.hint),
      })),
    }),
  );
  return grpcFrame(out);
}
