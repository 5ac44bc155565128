// Inputs to expressions (token claims, attributes, requests) are untrusted: they are copied into
// CEL-ready values within a budget before any expression sees them.
import { MAX_INPUT_BYTES, MAX_INPUT_DEPTH, MAX_INPUT_VALUES } from './limits.ts';

/** An input refused by sanitizeInput; the message names the bound it crossed. */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

/**
 * Copies an input object into CEL-ready values, refusing anything that is not JSON-shaped or too
 * big: ≈ JSON size ≤ 64 KiB, depth ≤ 16, ≤ 4096 values. Objects become null-prototype records (a
 * "__proto__" key stays data), safe integers become CEL ints (BigInt) so `assertion.runner_id
 * == 42` works, other numbers stay doubles. The walk stops at the first bound it crosses, so a
 * huge or cyclic input costs no more than the budget. `what` names the input in messages
 * (a plural: "claims", "attributes").
 * Throws InputError.
 */
export function sanitizeInput(input: unknown, what: string): Record<string, unknown> {
  let bytes = 0;
  let values = 0;
  const charge = (n: number) => {
    bytes += n;
    values++;
    if (bytes > MAX_INPUT_BYTES) throw new InputError(`${what} exceed ${MAX_INPUT_BYTES} bytes`);
    if (values > MAX_INPUT_VALUES)
      throw new InputError(`${what} have more than ${MAX_INPUT_VALUES} values`);
  };
  const copy = (v: unknown, depth: number): unknown => {
    if (depth > MAX_INPUT_DEPTH)
      throw new InputError(`${what} nest deeper than ${MAX_INPUT_DEPTH} levels`);
    switch (typeof v) {
      case 'string':
        charge(v.length + 2);
        return v;
      case 'boolean':
        charge(5);
        return v;
      case 'number':
        if (!Number.isFinite(v)) throw new InputError(`${what} hold a non-finite number`);
        charge(String(v).length);
        return Number.isSafeInteger(v) ? BigInt(v) : v;
      case 'object': {
        if (v === null) {
          charge(4);
          return null;
        }
        if (Array.isArray(v)) {
          charge(2);
          const out: unknown[] = [];
          for (let i = 0; i < v.length; i++) {
            charge(1);
            out.push(copy(v[i], depth + 1));
          }
          return out;
        }
        const proto = Object.getPrototypeOf(v) as unknown;
        if (proto !== Object.prototype && proto !== null) {
          throw new InputError(`${what} hold a value that is not JSON`);
        }
        charge(2);
        const out = Object.create(null) as Record<string, unknown>;
        for (const k of Object.keys(v)) {
          charge(k.length + 4);
          out[k] = copy((v as Record<string, unknown>)[k], depth + 1);
        }
        return out;
      }
      default:
        throw new InputError(`${what} hold a ${typeof v}, which is not JSON`);
    }
  };
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new InputError(`${what} are not a JSON object`);
  }
  return copy(input, 1) as Record<string, unknown>;
}
