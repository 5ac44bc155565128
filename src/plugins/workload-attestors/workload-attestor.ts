// The agent half of workload attestation: facts about a local process, as selectors. One method,
// like SPIRE's WorkloadAttestor. The pid is the kernel's (SO_PEERCRED); the agent re-checks that
// the same process still owns it after attestation, so an attestor may take its time.
import type { Selector } from '../../core/selector.ts';

export interface WorkloadAttestor {
  /** Selector type this attestor produces: unix, docker, k8s. */
  readonly type: string;
  /**
   * Selectors for the process. Returns [] when the process is not this attestor's kind (e.g. not
   * in a container for docker); throws only when the facts cannot be read for a process that is.
   */
  attest(pid: number, signal: AbortSignal): Promise<Selector[]>;
}
