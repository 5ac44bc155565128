// A JSON document an admin request carries in a field (a JWK Set, a dry run's claims): bounded in
// size before it is parsed, and refused naming the field.
import { InvalidArgumentError } from '../../core/errors.ts';

export function parseJsonDocument(text: string, field: string, maxBytes: number): unknown {
  if (Buffer.byteLength(text) > maxBytes)
    throw new InvalidArgumentError(`${field}: larger than ${maxBytes} bytes`);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InvalidArgumentError(`${field}: not JSON: ${(e as Error).message}`);
  }
}
