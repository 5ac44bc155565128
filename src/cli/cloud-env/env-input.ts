// What `tessera cloud env` knows when it builds a cloud's environment (builders in this folder,
// one per cloud) and what a builder answers: where the agent's cloud endpoints listen, what the
// agent config says about this process's files, the flags; the variables to export and the files
// to write first. Pure data; the command reads the agent config and flags and writes the files.
import { InvalidArgumentError } from '../../core/errors.ts';

export interface OwnedTokenFile {
  readonly path: string;
  readonly uid: number;
}

export interface CloudEnvInput {
  /** `127.0.0.1:PORT` or `[::1]:PORT`: the agent's cloud.listen (checked by agentBaseUrl). */
  readonly address: string;
  /** --server-workload: the server workload (role, account, identity) to use; "" = the agent picks. */
  readonly serverWorkload: string;
  /** The uid the environment is for (this process's). */
  readonly uid: number;
  /** cloud.token_files of the agent config (JWT-SVID files) with their SPIFFE ID and audience. */
  readonly tokenFiles: readonly (OwnedTokenFile & { spiffe_id: string; audience: string })[];
  /** cloud.aws_container_token_files of the agent config. */
  readonly awsContainerTokenFiles: readonly OwnedTokenFile[];
  /** Per-cloud flags (`roleArn`, `tokenFile`, `audience`, ...), camelCased, as given. */
  readonly options: Readonly<Record<string, string | undefined>>;
}

/** A file the environment names, written (0600) before the variables are printed. */
export interface EnvFile {
  /** Absolute. */
  readonly path: string;
  /** A JSON document with a `type` (an existing file is replaced only by one of its type). */
  readonly content: string;
  /** The flag that named the path, for errors. */
  readonly flag: string;
}

export interface CloudEnvOutput {
  /** Variables to export, in insertion order. */
  readonly env: Readonly<Record<string, string>>;
  readonly files?: readonly EnvFile[];
}

export type CloudEnvBuilder = (i: CloudEnvInput) => CloudEnvOutput;

/**
 * The one file among `files` owned by `uid` (and passing `also`). None: an error naming the key,
 * or undefined when `optional`; several: always an error (which one is meant is unknown).
 */
export function fileForUid<F extends OwnedTokenFile>(
  files: readonly F[],
  uid: number,
  key: string,
  also?: (f: F) => boolean,
  optional?: false,
): F;
export function fileForUid<F extends OwnedTokenFile>(
  files: readonly F[],
  uid: number,
  key: string,
  also: (f: F) => boolean,
  optional: boolean,
): F | undefined;
export function fileForUid<F extends OwnedTokenFile>(
  files: readonly F[],
  uid: number,
  key: string,
  also: (f: F) => boolean = () => true,
  optional = false,
): F | undefined {
  const mine = files.filter((f) => f.uid === uid && also(f));
  if (mine.length === 1 && mine[0]) return mine[0];
  if (mine.length === 0 && optional) return undefined;
  throw new InvalidArgumentError(
    mine.length === 0
      ? `the agent config lists no ${key} for uid ${uid} (or pass --token-file)`
      : `the agent config lists several ${key} for uid ${uid}: pass --token-file`,
  );
}

/** The JWT-SVID token file (--token-file, else cloud.token_files) of the uid for `audience`. */
export function tokenFileFor(i: CloudEnvInput, audience: string, optional?: false): string;
export function tokenFileFor(
  i: CloudEnvInput,
  audience: string,
  optional: boolean,
): string | undefined;
export function tokenFileFor(
  i: CloudEnvInput,
  audience: string,
  optional = false,
): string | undefined {
  return (
    i.options['tokenFile'] ??
    fileForUid(
      i.tokenFiles,
      i.uid,
      `cloud.token_files entry with audience ${audience}`,
      (f) => f.audience === audience,
      optional,
    )?.path
  );
}
