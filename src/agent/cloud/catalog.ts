// The cloud endpoints the agent serves on `cloud.listen` (docs/cloud-credentials.md). One line
// per endpoint; each lives in its cloud's folder.
import type { CloudEndpoint } from './cloud-endpoint.ts';

export function cloudEndpoints(): CloudEndpoint[] {
  return [];
}
