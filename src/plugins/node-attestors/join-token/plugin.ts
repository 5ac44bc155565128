// join_token: both halves and their config. Server: `node_attestors.join_token: {}` enables it
// (nothing to configure). Agent: `join_token: <token>`, "" for none.
import { z } from 'zod';
import type { NodeAttestorPlugin } from '../node-attestor.ts';
import { joinTokenAgent } from './agent.ts';
import { createJoinTokenAttestor, JOIN_TOKEN_TYPE } from './server.ts';

const serverSchema = z.strictObject({});
const agentSchema = z.string();

export const joinTokenPlugin: NodeAttestorPlugin<typeof serverSchema, typeof agentSchema> = {
  type: JOIN_TOKEN_TYPE,
  serverSchema,
  createServer: (_config, deps) => createJoinTokenAttestor(deps.joinTokens),
  agentSchema,
  createAgent: async (token) => joinTokenAgent(token),
};
