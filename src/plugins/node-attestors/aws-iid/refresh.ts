// aws_iid's refresh (`ec2_api.refresh_interval`): tags, security groups and the instance profile
// change while an instance runs, and a running agent renews its SVID without attesting again. So
// the server re-describes an attested instance and derives its EC2 selectors anew. Trust is not
// widened: the instance, region and account come from the stored selectors, which attestation
// took from a verified identity document; only the attributes EC2 holds are read again, with the
// same checks as at attestation. A terminated instance or an EC2 error changes nothing.
import { isTesseraError } from '../../../core/errors.ts';
import type { Selector } from '../../../core/selector.ts';
import type { NodeRefreshOutcome, NodeSelectorRefresher } from '../node-attestor.ts';
import { describeInstance } from './ec2-api.ts';
import { AWS_IID_TYPE, type Ec2ApiOptions, ec2Selectors } from './server.ts';

/** Selector values that come from the EC2 API, not from the identity document. */
const EC2_PREFIXES = ['tag:', 'sg:', 'instance_profile:'];

export const isEc2Selector = (s: Selector): boolean =>
  s.type === AWS_IID_TYPE && EC2_PREFIXES.some((p) => s.value.startsWith(p));

/** States in which the instance is gone or going: its attributes are no longer refreshed. */
const GONE_STATES = new Set(['shutting-down', 'terminated']);

/** The one value of a document selector (`account:`, `region:`, `instance_id:`), or "". */
function documentValue(selectors: readonly Selector[], name: string): string {
  const found = selectors.filter((s) => s.type === AWS_IID_TYPE && s.value.startsWith(`${name}:`));
  return found.length === 1 ? (found[0] as Selector).value.slice(name.length + 1) : '';
}

export function createAwsIidRefresher(o: {
  readonly ec2: Ec2ApiOptions;
  readonly everyMs: number;
  readonly now: () => number;
}): NodeSelectorRefresher {
  return {
    everyMs: o.everyMs,
    async refresh(selectors): Promise<NodeRefreshOutcome> {
      const accountId = documentValue(selectors, 'account');
      const region = documentValue(selectors, 'region');
      const instanceId = documentValue(selectors, 'instance_id');
      if (accountId === '' || region === '' || instanceId === '')
        return { failed: 'aws_iid: the node record names no single account, region and instance' };
      let described;
      try {
        described = await describeInstance({
          endpoint: o.ec2.endpoint,
          region,
          accountId,
          instanceId,
          credentials: o.ec2.credentials,
          now: o.now(),
          fetch: o.ec2.fetch,
        });
      } catch (e) {
        // The same words as a refused attestation; anything else is a bug worth surfacing.
        if (isTesseraError(e)) return { failed: e.message };
        throw e;
      }
      if (GONE_STATES.has(described.state))
        return { failed: `aws_iid: instance ${instanceId} is ${described.state}` };
      return {
        selectors: [
          ...selectors.filter((s) => !isEc2Selector(s)),
          ...ec2Selectors(described, o.ec2),
        ],
      };
    },
  };
}
