// The agent's cloud endpoint address as `tessera cloud env` takes it: the agent's `cloud.listen`
// (`127.0.0.1:PORT` or `[::1]:PORT`), never another host — the SDKs would send the workload's
// identity there.
import { InvalidArgumentError } from '../../core/errors.ts';

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]):(\d{1,5})$/;

/** `http://ADDR` for a loopback HOST:PORT; InvalidArgumentError naming the value otherwise. */
export function agentBaseUrl(agentAddress: string): string {
  const m = LOOPBACK.exec(agentAddress);
  const port = Number(m?.[2]);
  if (!m || port < 1 || port > 65535) {
    throw new InvalidArgumentError(
      `agent address "${agentAddress.slice(0, 80)}": expected the agent's cloud.listen, 127.0.0.1:PORT or [::1]:PORT`,
    );
  }
  return `http://${agentAddress}`;
}

export interface EnvFile {
  readonly path: string;
  readonly content: string;
}

export interface CloudEnv {
  readonly env: Record<string, string>;
  readonly files?: EnvFile[];
}

/**
 * What `tessera cloud env` hands a cloud's builder (structurally the cloud-aws branch's
 * CloudEnvInput, so the builders plug into its dispatch as they are).
 */
export interface EnvInput {
  readonly address: string;
  /** "" = none given. */
  readonly serverWorkload: string;
  readonly uid: number;
  /** The agent's JWT-SVID token files (cloud.token_files), with their owner and audience. */
  readonly tokenFiles: readonly { path: string; uid: number; audience: string }[];
  /** Per-cloud flags, camelCased. */
  readonly options: Readonly<Record<string, string | undefined>>;
}

/** The token file of `uid` for `audience` named by the agent config, if exactly one. */
export function tokenFileFor(i: EnvInput, audience: string): string | undefined {
  const mine = i.tokenFiles.filter((f) => f.uid === i.uid && f.audience === audience);
  return mine.length === 1 ? mine[0]?.path : undefined;
}

/** A builder's answer as the dispatch prints it: ordered pairs, and files to write first. */
export function asPairs(e: CloudEnv): { env: [string, string][]; files?: EnvFile[] } {
  return { env: Object.entries(e.env), ...(e.files && { files: e.files }) };
}
