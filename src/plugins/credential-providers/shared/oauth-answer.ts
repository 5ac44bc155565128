// Reading the answers of OAuth-style token services (Google STS, Entra ID): the OAuth error JSON
// {error, error_description} reported by code and description, and expires_in.
import { UnavailableError } from '../../../core/errors.ts';
import { cleanText, jsonObject } from './upstream-http.ts';

/** A bearer token and when it expires. */
export interface ExpiringToken {
  readonly token: string;
  /** Epoch ms. */
  readonly expiresAt: number;
}

/** An OAuth error answer (`error`, `error_description`), or the status alone. */
export function oauthRefusal(where: string, status: number, text: string): UnavailableError {
  const body = jsonObject(text);
  const error = cleanText(body?.error, 100);
  if (error === '') return new UnavailableError(`${where}: HTTP ${status}`);
  const desc = cleanText(body?.error_description, 300);
  return new UnavailableError(
    `${where} refused: ${error}${desc === '' ? '' : ` (${desc})`} (HTTP ${status})`,
  );
}

/** expires_in as seconds: a positive integer, or a string of one; null otherwise. */
export function expiresInSeconds(v: unknown): number | null {
  if (typeof v === 'number' && Number.isInteger(v) && v > 0 && v < 1e9) return v;
  if (typeof v === 'string' && /^\d{1,9}$/.test(v) && Number(v) > 0) return Number(v);
  return null;
}
