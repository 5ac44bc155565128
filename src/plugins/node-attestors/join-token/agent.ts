// Agent half of join_token: the token is the whole evidence; there is no challenge.
import { InvalidArgumentError } from '../../../core/errors.ts';
import type { AgentNodeAttestor } from '../node-attestor.ts';
import { JOIN_TOKEN_TYPE } from './server.ts';

export function joinTokenAgent(token: string): AgentNodeAttestor {
  return {
    type: JOIN_TOKEN_TYPE,
    canReattest: false,
    payload: async () => Buffer.from(token, 'utf8'),
    answer: () => {
      throw new InvalidArgumentError('join_token attestation takes no challenge');
    },
  };
}
