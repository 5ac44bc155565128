// SPIFFE ID templates: "spiffe://example.org/ci/github/{repository*}". Placeholders are filled
// from mapped attributes, which come from an untrusted token, so the rules are strict:
//   - a placeholder is a whole path segment: "/{name}" or "/{name*}", never part of one;
//   - "{name}" takes one segment: [A-Za-z0-9._-]+, not "." or "..";
//   - "{name*}" takes one or more such segments joined by "/" (no empty, "." or ".." segment);
//   - nothing is escaped or rewritten: a value that does not fit is refused. Escaping (say,
//     percent-encoding) would let two different claim values collide or smuggle a "/" through;
//   - the first path segment is a literal and not "spire", so no token can be mapped onto the
//     server's or an agent's ID (spiffe://td/spire/...).
// The rendered ID must parse as a SpiffeId in the configured trust domain.
import { InvalidArgumentError } from '../../../core/errors.ts';
import { SpiffeId, type TrustDomain } from '../../../core/spiffe-id.ts';
import { ATTRIBUTE_NAME_RE } from './trust-policy.ts';

type Part = { literal: string } | { attribute: string; multi: boolean };

export interface SpiffeTemplate {
  readonly source: string;
  /** The attributes the template reads. */
  readonly attributes: readonly string[];
  /** Fills the placeholders; throws InvalidArgumentError naming the placeholder on a bad value. */
  render(attributes: Readonly<Record<string, unknown>>): SpiffeId;
}

const SEGMENT_RE = /^[A-Za-z0-9._-]+$/;

export function compileSpiffeTemplate(
  source: string,
  trustDomain: TrustDomain,
  what = 'spiffe_id',
): SpiffeTemplate {
  const fail = (why: string) => new InvalidArgumentError(`${what}: template "${source}": ${why}`);
  const prefix = trustDomain.id + '/';
  if (!source.startsWith(prefix)) {
    throw fail(`must start with "${prefix}" (the configured trust domain)`);
  }
  const segments = source.slice(prefix.length).split('/');
  const parts: Part[] = [];
  for (const [i, seg] of segments.entries()) {
    const m = /^\{([^{}*]*)(\*?)\}$/.exec(seg);
    if (m) {
      const name = m[1] ?? '';
      if (!ATTRIBUTE_NAME_RE.test(name)) throw fail(`bad placeholder "${seg}"`);
      if (i === 0) throw fail('the first path segment must be a literal');
      parts.push({ attribute: name, multi: m[2] === '*' });
      continue;
    }
    if (seg.includes('{') || seg.includes('}')) {
      throw fail(`a placeholder must be a whole path segment, got "${seg}"`);
    }
    if (i === 0 && seg === 'spire')
      throw fail('the path "/spire" is reserved for servers and agents');
    parts.push({ literal: seg });
  }
  // Check the literal parts with a neutral sample value, so template typos fail at load time.
  const sample = parts.map((p) => ('literal' in p ? p.literal : 'x')).join('/');
  try {
    SpiffeId.parse(prefix + sample);
  } catch (e) {
    throw fail((e as Error).message);
  }
  const attributes = [...new Set(parts.flatMap((p) => ('attribute' in p ? [p.attribute] : [])))];

  return {
    source,
    attributes,
    render(values) {
      const out: string[] = [];
      for (const p of parts) {
        if ('literal' in p) {
          out.push(p.literal);
          continue;
        }
        const v = values[p.attribute];
        const label = `{${p.attribute}${p.multi ? '*' : ''}}`;
        if (typeof v !== 'string') {
          throw new InvalidArgumentError(`${what}: ${label} needs a string attribute`);
        }
        const segs = p.multi ? v.split('/') : [v];
        for (const s of segs) {
          if (s === '.' || s === '..' || !SEGMENT_RE.test(s)) {
            throw new InvalidArgumentError(
              `${what}: ${label} value "${clip(v)}" is not ${p.multi ? 'a "/"-separated list of path segments' : 'a single path segment'} ([A-Za-z0-9._-]+, not "." or "..")`,
            );
          }
        }
        out.push(segs.join('/'));
      }
      let id: SpiffeId;
      try {
        id = SpiffeId.parse(prefix + out.join('/'));
      } catch (e) {
        throw new InvalidArgumentError(`${what}: ${(e as Error).message}`);
      }
      // Belt and braces: the prefix is fixed, but say why membership matters if it ever changes.
      if (!id.memberOf(trustDomain)) {
        throw new InvalidArgumentError(`${what}: "${id}" is outside trust domain ${trustDomain}`);
      }
      return id;
    },
  };
}

function clip(s: string): string {
  return s.length > 80 ? s.slice(0, 77) + '...' : s;
}
