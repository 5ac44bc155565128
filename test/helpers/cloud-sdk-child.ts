// A workload using an unmodified cloud SDK through its default chain, configured by environment
// variables only (as `tessera cloud env` prints them). Started as a given uid by
// test/cloud-sdk-endpoints.test.ts; prints one JSON line: what the SDK got, or its error.
//   node cloud-sdk-child.ts google-adc [refresh]  ADC access token, email, project id; with
//                                                 `refresh`, asks again until the SDK has a new
//                                                 token (bounded): {..., second}
//   node cloud-sdk-child.ts google-id AUDIENCE    ADC ID token (GCE identity endpoint)
//   node cloud-sdk-child.ts azure-mi [refresh]    ManagedIdentityCredential().getToken
//   node cloud-sdk-child.ts azure-dac [refresh]   DefaultAzureCredential().getToken
//   node cloud-sdk-child.ts azure-header ADDR     the App Service identity header for this uid
import { DefaultAzureCredential, ManagedIdentityCredential } from '@azure/identity';
import { GoogleAuth } from 'google-auth-library';
import { fetchIdentityHeader } from '../../src/cli/cloud-env/azure.ts';

const STORAGE = 'https://storage.azure.com/.default';

/** With `refresh`: the next different token `get` gives, asking every 500 ms for at most 60 s. */
async function next(
  refresh: boolean,
  first: string | null | undefined,
  get: () => Promise<string | null | undefined>,
) {
  if (!refresh) return {};
  const deadline = Date.now() + 60_000;
  let second = first;
  while (second === first && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    second = await get();
  }
  return { second };
}

async function main(mode: string, arg: string): Promise<unknown> {
  switch (mode) {
    case 'google-adc': {
      const auth = new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
      const client = await auth.getClient();
      const { token } = await client.getAccessToken();
      const again = await next(
        arg === 'refresh',
        token,
        async () => (await client.getAccessToken()).token,
      );
      const expiry = (client.credentials as { expiry_date?: number }).expiry_date;
      const external = process.env['GOOGLE_APPLICATION_CREDENTIALS'] !== undefined;
      return {
        token,
        ...again,
        expiry,
        client: client.constructor.name,
        ...(!external && {
          email: (await auth.getCredentials()).client_email,
          projectId: await auth.getProjectId(),
          universe: await auth.getUniverseDomain(),
        }),
      };
    }
    case 'google-id': {
      const client = await new GoogleAuth().getIdTokenClient(arg);
      return { token: await client.idTokenProvider.fetchIdToken(arg) };
    }
    case 'azure-mi':
    case 'azure-dac': {
      const cred =
        mode === 'azure-mi' ? new ManagedIdentityCredential() : new DefaultAzureCredential();
      const t = await cred.getToken(STORAGE);
      return {
        token: t.token,
        ...(await next(
          arg === 'refresh',
          t.token,
          async () => (await cred.getToken(STORAGE)).token,
        )),
        expiresOn: t.expiresOnTimestamp,
        refreshAfter: t.refreshAfterTimestamp,
      };
    }
    case 'azure-header':
      return { header: await fetchIdentityHeader(arg) };
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

main(process.argv[2] ?? '', process.argv[3] ?? '').then(
  (r) => {
    process.stdout.write(`${JSON.stringify({ ok: r })}\n`);
    process.exit(0);
  },
  (e: unknown) => {
    const err = e as {
      message?: string;
      status?: number;
      statusCode?: number;
      response?: { status?: number };
    };
    process.stdout.write(
      `${JSON.stringify({
        error: String(err.message ?? e),
        status: err.status ?? err.statusCode ?? err.response?.status,
      })}\n`,
    );
    process.exit(1);
  },
);
