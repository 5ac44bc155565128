// Reading a provider's secrets from the store: a missing secret is the provider's
// misconfiguration (FailedPreconditionError naming provider and secret, never a value).
import { FailedPreconditionError, NotFoundError } from '../../../core/errors.ts';
import type { SecretReader } from '../credential-provider.ts';

export async function readSecretBytes(
  secrets: SecretReader,
  provider: string,
  name: string,
): Promise<Uint8Array> {
  try {
    return await secrets.read(name);
  } catch (e) {
    if (e instanceof NotFoundError) {
      throw new FailedPreconditionError(
        `credential provider "${provider}": secret "${name}" does not exist`,
      );
    }
    throw e;
  }
}

/** The secret as UTF-8 text; FailedPreconditionError when it is not valid UTF-8. */
export async function readSecretText(
  secrets: SecretReader,
  provider: string,
  name: string,
): Promise<string> {
  const bytes = await readSecretBytes(secrets, provider, name);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new FailedPreconditionError(
      `credential provider "${provider}": secret "${name}" is not UTF-8 text`,
    );
  }
}
