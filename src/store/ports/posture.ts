// Store port of posture (docs/posture.md): the last scanner report per subject and the import
// counter. An import replaces the reports of the subjects it names, in one transaction.
import type { PostureFindings, PostureReport, PostureScanner } from '../../core/posture.ts';

export interface PostureStore {
  /**
   * Stores one import: bumps the import version, replaces the report of every subject in
   * `findings` and announces the `access` topic (agents re-check). Returns the stored reports.
   */
  import(
    scanner: PostureScanner,
    findings: readonly PostureFindings[],
    at: number,
  ): Promise<{ version: number; reports: PostureReport[] }>;
  /** Every stored report, by subject. */
  list(): Promise<PostureReport[]>;
  get(subject: string): Promise<PostureReport | undefined>;
  /** The last import version (0 when there was none). */
  revision(): Promise<number>;
}
