// One line per cloud: the builder of its `tessera cloud env` variables.
import { awsEnv } from './aws.ts';
import type { CloudEnvBuilder } from './env-input.ts';

export const cloudEnvBuilders: Readonly<Record<string, CloudEnvBuilder>> = {
  aws: awsEnv,
};
