// The URL of a cloud token service in a provider's config: https, or http to a loopback host only
// (a stand-in on the same machine). No userinfo, query or fragment: the provider builds the
// request, and the URL is shown in errors, so it must hold nothing secret.
import { z } from 'zod';

const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

export const endpointUrl = z
  .string()
  .max(2048)
  .superRefine((v, ctx) => {
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      ctx.addIssue({ code: 'custom', message: `not a URL: "${v.slice(0, 100)}"` });
      return;
    }
    const ok = u.protocol === 'https:' || (u.protocol === 'http:' && LOOPBACK.has(u.hostname));
    if (!ok)
      ctx.addIssue({ code: 'custom', message: 'must be https:// (http:// only to loopback)' });
    if (u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '') {
      ctx.addIssue({ code: 'custom', message: 'must not hold credentials, a query or a fragment' });
    }
  });

/** `base` without trailing slashes, then `path` (which starts with "/"). */
export const joinUrl = (base: string, path: string): string => base.replace(/\/+$/, '') + path;
