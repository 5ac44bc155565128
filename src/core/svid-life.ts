// When a held SVID is due for renewal: half-way through the life it had left when it arrived.
//
// Servers start SVIDs in the past to absorb clock skew (Tessera and SPIRE backdate notBefore by
// 10 s), so half of notAfter − notBefore would make an SVID with a TTL under 20 s due the moment
// it is issued (renewed on every tick), and any SVID due 5 s early. Counting from arrival keeps
// a 6 s SVID for 3 s and a 1 h SVID for 30 min.

/**
 * The instant half of the SVID's remaining life has passed, counted from `receivedAt` (clamped
 * into [notBefore, notAfter]). Without `receivedAt` (an SVID read back from disk, whose arrival is
 * unknown) the life counts from notBefore: such an SVID is renewed earlier, never later.
 */
export function halfLifeAt(notBefore: number, notAfter: number, receivedAt?: number): number {
  const start = Math.min(Math.max(receivedAt ?? notBefore, notBefore), notAfter);
  return start + (notAfter - start) / 2;
}
