// What `tessera cloud env` knows when it builds a cloud's environment (builders in this folder,
// one per cloud): where the agent's cloud endpoints listen and what the agent config says about
// this process's files. Pure data; the command reads the agent config and flags.
import { InvalidArgumentError } from '../../core/errors.ts';

export interface OwnedTokenFile {
  readonly path: string;
  readonly uid: number;
}

export interface CloudEnvInput {
  /** `127.0.0.1:PORT` or `[::1]:PORT`: the agent's cloud.listen. */
  readonly address: string;
  /** --server-workload: the server workload (role, account, identity) to use; "" = the agent picks. */
  readonly serverWorkload: string;
  /** The uid the environment is for (this process's). */
  readonly uid: number;
  /** cloud.token_files of the agent config (JWT-SVID files) with their SPIFFE ID and audience. */
  readonly tokenFiles: readonly (OwnedTokenFile & { spiffe_id: string; audience: string })[];
  /** cloud.aws_container_token_files of the agent config. */
  readonly awsContainerTokenFiles: readonly OwnedTokenFile[];
  /** Per-cloud extra flags (`--role-arn`, `--token-file`, ...), as given. */
  readonly options: Readonly<Record<string, string | undefined>>;
}

/** Variables to export, in order. */
export interface CloudEnvOutput {
  readonly env: readonly (readonly [string, string])[];
}

export type CloudEnvBuilder = (i: CloudEnvInput) => CloudEnvOutput;

/** The one file among `files` owned by `uid` (none or several: an error naming the key). */
export function fileForUid<F extends OwnedTokenFile>(
  files: readonly F[],
  uid: number,
  key: string,
  also: (f: F) => boolean = () => true,
): F {
  const mine = files.filter((f) => f.uid === uid && also(f));
  if (mine.length === 1 && mine[0]) return mine[0];
  throw new InvalidArgumentError(
    mine.length === 0
      ? `the agent config lists no ${key} for uid ${uid} (or pass --token-file)`
      : `the agent config lists several ${key} for uid ${uid}: pass --token-file`,
  );
}
