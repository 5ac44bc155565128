// SecretService: thin translations to the SecretStoreService of server/broker. Admin only
// (authz-table.ts); no response carries a value.
import type { ServiceImpl } from '@connectrpc/connect';
import type { SecretService as SecretApi } from '../../../../proto/gen/tessera/v1/secret_pb.js';
import type { SecretStoreService } from '../../broker/secret-store.ts';
import { requestOf } from '../context-keys.ts';
import { secretToWire } from '../../../wire/secret.ts';

export function secretHandlers(
  secrets: SecretStoreService,
): Partial<ServiceImpl<typeof SecretApi>> {
  return {
    async putSecret(req, ctx) {
      return { secret: secretToWire(await secrets.put(requestOf(ctx), req.name, req.value)) };
    },
    async listSecrets() {
      return { secrets: (await secrets.list()).map(secretToWire) };
    },
    async getSecret(req) {
      return { secret: secretToWire(await secrets.get(req.name)) };
    },
    async rotateSecret(req, ctx) {
      return {
        secret: secretToWire(await secrets.rotate(requestOf(ctx), req.name, req.value)),
      };
    },
    async deleteSecret(req, ctx) {
      return { secret: secretToWire(await secrets.delete(requestOf(ctx), req.name)) };
    },
    async rotateKeyEncryptionKey(_req, ctx) {
      const r = await secrets.rotateKek(requestOf(ctx));
      return { kekId: r.kekId, rewrapped: r.rewrapped };
    },
  };
}
