// A workload using the AWS SDK for JavaScript v3 unmodified: the default Node credential chain
// (fromNodeProviderChain), configured by environment variables only. Run as another uid by the
// cloud tests. Prints one JSON line: {first, second?} credentials, or {error}.
//   once     get credentials
//   refresh  get them, then ask again until the SDK has fetched different ones (bounded)
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';

const mode = process.argv[2] ?? 'once';
const provider = fromNodeProviderChain();
const view = (c: {
  accessKeyId: string;
  expiration?: Date | undefined;
  sessionToken?: string;
}) => ({
  accessKeyId: c.accessKeyId,
  sessionToken: c.sessionToken ?? '',
  expiration: c.expiration?.toISOString() ?? null,
});

try {
  const first = await provider();
  if (mode === 'refresh') {
    const deadline = Date.now() + 90_000;
    let second = first;
    while (second.accessKeyId === first.accessKeyId && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      second = await provider();
    }
    console.log(JSON.stringify({ first: view(first), second: view(second) }));
  } else {
    console.log(JSON.stringify({ first: view(first) }));
  }
} catch (e) {
  const err = e as Error & { $metadata?: { httpStatusCode?: number } };
  console.log(JSON.stringify({ error: `${err.name}: ${err.message}` }));
  process.exitCode = 1;
}
