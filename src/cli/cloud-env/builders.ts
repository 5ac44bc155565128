// One line per cloud: the builder of its `tessera cloud env` variables.
import { awsEnv } from './aws.ts';
import { azureCloudEnv } from './azure.ts';
import type { CloudEnvBuilder } from './env-input.ts';
import { gcpCloudEnv } from './gcp.ts';

export const cloudEnvBuilders: Readonly<Record<string, CloudEnvBuilder>> = {
  aws: awsEnv,
  gcp: gcpCloudEnv,
  azure: azureCloudEnv,
};
