// Selector values come from outside the agent (file names, container labels, pod labels). A value
// no registration entry could hold — over the selector size limit or with control characters — can
// never match, so it is dropped rather than failing the whole attestation.
import { formatSelector, parseSelector } from '../../../core/selector.ts';
import type { Selector } from '../../../core/selector.ts';

export function validSelectors(selectors: readonly Selector[]): Selector[] {
  const out: Selector[] = [];
  const seen = new Set<string>();
  for (const s of selectors) {
    const text = formatSelector(s);
    if (seen.has(text)) continue;
    try {
      parseSelector(text);
    } catch {
      continue;
    }
    seen.add(text);
    out.push(s);
  }
  return out;
}
