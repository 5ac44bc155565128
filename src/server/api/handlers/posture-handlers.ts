// PostureService: thin translations to server/posture's PostureService. Admin only (authz-table.ts).
import type { ServiceImpl } from '@connectrpc/connect';
import type { PostureService as PostureApi } from '../../../../proto/gen/tessera/v1/posture_pb.js';
import type { PostureService } from '../../posture/posture-service.ts';
import { requestOf } from '../context-keys.ts';
import { postureReportToWire } from '../../../wire/posture.ts';

export function postureHandlers(posture: PostureService): Partial<ServiceImpl<typeof PostureApi>> {
  return {
    async importPosture(req, ctx) {
      const r = await posture.import(requestOf(ctx), req.format, req.report, req.subjects);
      return { importVersion: BigInt(r.version), reports: r.reports.map(postureReportToWire) };
    },
    async listPosture() {
      return { reports: (await posture.list()).map(postureReportToWire) };
    },
    async getPosture(req) {
      return { report: postureReportToWire(await posture.get(req.subject)) };
    },
  };
}
