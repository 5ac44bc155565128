// `tessera cloud env --cloud aws`: the variables pointing an unmodified AWS SDK's default chain at
// the agent (docs/cloud-credentials.md "AWS", reference: the chain reads only these):
//   - default: IMDSv2 — AWS_EC2_METADATA_SERVICE_ENDPOINT (http only; the SDK ignores any path)
//     with v1 disabled; the role is the server workload the server grants the caller;
//   - --server-workload NAME: container credentials — AWS_CONTAINER_CREDENTIALS_FULL_URI naming
//     it, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE the caller's token file;
//   - --role-arn ARN: web identity — AWS_WEB_IDENTITY_TOKEN_FILE (a JWT-SVID file the agent keeps
//     fresh) and AWS_ROLE_ARN: the SDK calls STS itself.
import { InvalidArgumentError } from '../../core/errors.ts';
import { agentBaseUrl } from './agent-address.ts';
import { type CloudEnvBuilder, fileForUid, tokenFileFor } from './env-input.ts';

export const AWS_CONTAINER_PATH = '/aws/container-credentials/';
const ROLE_ARN = /^arn:aws(-cn|-us-gov)?:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;

export const awsEnv: CloudEnvBuilder = (i) => {
  const base = agentBaseUrl(i.address);
  const roleArn = i.options['roleArn'];
  if (roleArn !== undefined) {
    if (!ROLE_ARN.test(roleArn)) {
      throw new InvalidArgumentError(
        `--role-arn: "${roleArn.slice(0, 80)}" is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)`,
      );
    }
    return {
      env: {
        AWS_WEB_IDENTITY_TOKEN_FILE: tokenFileFor(i, 'sts.amazonaws.com'),
        AWS_ROLE_ARN: roleArn,
      },
    };
  }
  if (i.serverWorkload !== '') {
    const file =
      i.options['tokenFile'] ??
      fileForUid(i.awsContainerTokenFiles, i.uid, 'cloud.aws_container_token_files entry').path;
    return {
      env: {
        AWS_CONTAINER_CREDENTIALS_FULL_URI: `${base}${AWS_CONTAINER_PATH}${i.serverWorkload}`,
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: file,
      },
    };
  }
  return {
    env: { AWS_EC2_METADATA_SERVICE_ENDPOINT: base, AWS_EC2_METADATA_V1_DISABLED: 'true' },
  };
};
