// Where the agent may write token files for workloads (cloud.token_files,
// cloud.aws_container_token_files): only inside its data directory or the configured token
// directory, so a config line cannot make the agent (often root) overwrite /etc/shadow. Checked
// once at config load, naming the offending key; the writer checks again against symlinks.
import path from 'node:path';
import { InvalidArgumentError } from '../../core/errors.ts';
import { SpiffeId } from '../../core/spiffe-id.ts';

export interface TokenDirs {
  readonly data_dir: string;
  readonly cloud: {
    readonly token_dir: string;
    readonly token_files: readonly { path: string; spiffe_id: string }[];
    readonly aws_container_token_files: readonly { path: string }[];
  };
}

/** The directories token files may live in (absolute, normalised). */
export function tokenRoots(c: TokenDirs): string[] {
  const roots = [path.resolve(c.data_dir)];
  if (c.cloud.token_dir !== '') roots.push(path.resolve(c.cloud.token_dir));
  return roots;
}

/** True when `file` is strictly inside one of `roots` (lexically; symlinks are the writer's). */
export function insideRoots(file: string, roots: readonly string[]): boolean {
  return roots.some((r) => {
    const rel = path.relative(r, file);
    return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
  });
}

/** Throws InvalidArgumentError naming the key of the first bad path or SPIFFE ID. */
export function checkTokenFilePaths(c: TokenDirs): void {
  if (c.cloud.token_dir !== '' && !path.isAbsolute(c.cloud.token_dir)) {
    throw new InvalidArgumentError(
      `config: cloud.token_dir: ${c.cloud.token_dir} is not an absolute path`,
    );
  }
  const roots = tokenRoots(c);
  const seen = new Set<string>();
  const check = (key: string, file: string) => {
    if (!path.isAbsolute(file) || path.normalize(file) !== file) {
      throw new InvalidArgumentError(`config: ${key}: ${file} is not a normalised absolute path`);
    }
    if (!insideRoots(file, roots)) {
      throw new InvalidArgumentError(
        `config: ${key}: ${file} is outside the agent's data directory ${roots[0]}` +
          (roots[1]
            ? ` and cloud.token_dir ${roots[1]}`
            : ' (set cloud.token_dir to allow another)'),
      );
    }
    if (seen.has(file)) throw new InvalidArgumentError(`config: ${key}: ${file} is listed twice`);
    seen.add(file);
  };
  c.cloud.token_files.forEach((f, i) => {
    check(`cloud.token_files.${i}.path`, f.path);
    try {
      SpiffeId.parse(f.spiffe_id);
    } catch (e) {
      throw new InvalidArgumentError(
        `config: cloud.token_files.${i}.spiffe_id: ${(e as Error).message}`,
      );
    }
  });
  c.cloud.aws_container_token_files.forEach((f, i) =>
    check(`cloud.aws_container_token_files.${i}.path`, f.path),
  );
}
