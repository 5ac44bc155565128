import type { ServiceImpl } from '@connectrpc/connect';
import type { EntryService as EntryApi } from '../../../../proto/gen/tessera/v1/entry_pb.js';
import type { EntryService } from '../../registration/entry-service.ts';
import { requestOf } from '../context-keys.ts';
import { entryInputFromWire, entryToWire } from '../../../wire/entry.ts';
import { statusToWire } from '../../../wire/status.ts';

export function entryHandlers(entries: EntryService): Partial<ServiceImpl<typeof EntryApi>> {
  return {
    async batchCreateEntry(req, ctx) {
      const results = await entries.batchCreate(
        requestOf(ctx),
        req.entries.map(entryInputFromWire),
      );
      return {
        results: results.map((r) => ({
          status: statusToWire(r),
          ...(r.ok ? { entry: entryToWire(r.value) } : {}),
        })),
      };
    },
    async batchUpdateEntry(req, ctx) {
      const updates = req.updates.map((u) => ({
        id: u.entry?.id ?? '',
        input: entryInputFromWire(u.entry),
        mask: u.mask,
      }));
      const results = await entries.batchUpdate(requestOf(ctx), updates);
      return {
        results: results.map((r) => ({
          status: statusToWire(r),
          ...(r.ok ? { entry: entryToWire(r.value) } : {}),
        })),
      };
    },
    async batchDeleteEntry(req, ctx) {
      const results = await entries.batchDelete(requestOf(ctx), req.ids);
      return {
        results: results.map((r, i) => ({ status: statusToWire(r), id: req.ids[i] ?? '' })),
      };
    },
    async getEntry(req) {
      return { entry: entryToWire(await entries.get(req.id)) };
    },
    async listEntries(req) {
      const page = await entries.list({
        spiffeId: req.bySpiffeId,
        parentId: req.byParentId,
        selector: req.bySelector,
        pageSize: req.pageSize,
        pageToken: req.pageToken,
      });
      return { entries: page.items.map(entryToWire), nextPageToken: page.nextPageToken };
    },
    async checkParent(req) {
      return { kind: await entries.checkParent(req.parentId) };
    },
  };
}
