// The configured workload attestors as one SelectorSource: every attestor runs on the pid, their
// selectors are concatenated. Bounding (timeout, cancellation) is the service's job, via `signal`.
import type { Selector } from '../../core/selector.ts';
import type { WorkloadAttestor } from '../../plugins/workload-attestors/workload-attestor.ts';
import type { CallerProcess, SelectorSource } from './caller.ts';

export function attestorsSource(attestors: readonly WorkloadAttestor[]): SelectorSource {
  return {
    async attest(caller: CallerProcess, signal: AbortSignal): Promise<Selector[]> {
      const all = await Promise.all(attestors.map((a) => a.attest(caller.pid, signal)));
      return all.flat();
    },
  };
}
