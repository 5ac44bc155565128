// AWS STS as AssumeRoleWithWebIdentity documents it, for tests: the Query protocol (a form POST to
// "/"), one role whose trust policy names Tessera's issuer as OIDC provider with conditions on
// `<issuer>:aud` and `<issuer>:sub` (StringLike, `*` wildcards), and answers in STS's XML —
// the result document or ErrorResponse/Error/{Type,Code,Message}, with the modelled error codes.
import { randomBytes, randomUUID } from 'node:crypto';
import { type StandIn, form, startStandIn, verifySubjectToken } from './stand-in-server.ts';

export interface AwsRole {
  readonly arn: string;
  readonly issuer: string;
  /** `<issuer>:aud` StringEquals. */
  readonly audience: string;
  /** `<issuer>:sub` StringLike patterns (`*` any run of characters). */
  readonly subjects: readonly string[];
  /** The role's maximum session duration, seconds. */
  readonly maxSessionSeconds?: number;
}

export interface IssuedAwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly subject: string;
  readonly sessionName: string;
  readonly expiration: string;
}

export interface AwsStsStandIn extends StandIn {
  readonly issued: IssuedAwsCredentials[];
}

const xmlEscape = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const like = (pattern: string, v: string) =>
  new RegExp(
    '^' +
      pattern
        .split('*')
        .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*') +
      '$',
  ).test(v);

function errorXml(status: number, type: 'Sender' | 'Receiver', code: string, message: string) {
  return {
    status,
    contentType: 'text/xml',
    body:
      `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">\n` +
      `  <Error>\n    <Type>${type}</Type>\n    <Code>${code}</Code>\n` +
      `    <Message>${xmlEscape(message)}</Message>\n  </Error>\n` +
      `  <RequestId>${randomUUID()}</RequestId>\n</ErrorResponse>\n`,
  };
}

/** ISO 8601 to the second, as STS writes it. */
const isoSeconds = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export async function startAwsStsStandIn(
  role: AwsRole,
  now: () => number = Date.now,
): Promise<AwsStsStandIn> {
  const issued: IssuedAwsCredentials[] = [];
  const provider = role.issuer.replace(/^https?:\/\//, '');
  const standIn = await startStandIn(
    async (req) => {
      if (req.method !== 'POST' || req.path !== '/')
        return errorXml(404, 'Sender', 'UnknownOperationException', 'unknown operation');
      const f = form(req.body);
      if (f.get('Action') !== 'AssumeRoleWithWebIdentity' || f.get('Version') !== '2011-06-15')
        return errorXml(400, 'Sender', 'InvalidAction', 'Could not find operation');
      const sessionName = f.get('RoleSessionName') ?? '';
      if (!/^[\w+=,.@-]{2,64}$/.test(sessionName))
        return errorXml(
          400,
          'Sender',
          'ValidationError',
          "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint",
        );
      const duration = Number(f.get('DurationSeconds') ?? '3600');
      if (
        !Number.isInteger(duration) ||
        duration < 900 ||
        duration > (role.maxSessionSeconds ?? 3600)
      )
        return errorXml(
          400,
          'Sender',
          'ValidationError',
          'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.',
        );
      const token = f.get('WebIdentityToken') ?? '';
      const v = await verifySubjectToken(token, {
        issuer: role.issuer,
        audiences: [role.audience],
        algorithms: ['RS256', 'ES256', 'ES384'],
      });
      if ('rejected' in v) {
        const r = v.rejected;
        if (r.kind === 'jwks-unavailable')
          return errorXml(
            400,
            'Sender',
            'IDPCommunicationError',
            "Couldn't retrieve verification key from your identity provider",
          );
        if (r.kind === 'expired')
          return errorXml(400, 'Sender', 'ExpiredTokenException', 'Token expired');
        if (r.kind === 'audience')
          return errorXml(400, 'Sender', 'InvalidIdentityToken', 'Incorrect token audience');
        return errorXml(
          400,
          'Sender',
          'InvalidIdentityToken',
          "Couldn't verify the token signature or claims",
        );
      }
      const sub = String(v.claims.sub);
      if (f.get('RoleArn') !== role.arn || !role.subjects.some((p) => like(p, sub)))
        return errorXml(
          403,
          'Sender',
          'AccessDenied',
          'Not authorized to perform sts:AssumeRoleWithWebIdentity',
        );
      const c: IssuedAwsCredentials = {
        accessKeyId: `ASIA${randomBytes(8).toString('hex').toUpperCase()}`,
        secretAccessKey: randomBytes(30).toString('base64'),
        sessionToken: randomBytes(64).toString('base64'),
        subject: sub,
        sessionName,
        expiration: isoSeconds(now() + duration * 1000),
      };
      issued.push(c);
      const account = role.arn.split(':')[4] ?? '';
      const roleName = role.arn.split('/').at(-1) ?? '';
      return {
        status: 200,
        contentType: 'text/xml',
        body: `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>${xmlEscape(sub)}</SubjectFromWebIdentityToken>
    <Audience>${xmlEscape(role.audience)}</Audience>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::${account}:assumed-role/${roleName}/${sessionName}</Arn>
      <AssumedRoleId>AROA${randomBytes(6).toString('hex').toUpperCase()}:${sessionName}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>${xmlEscape(c.sessionToken)}</SessionToken>
      <SecretAccessKey>${xmlEscape(c.secretAccessKey)}</SecretAccessKey>
      <Expiration>${c.expiration}</Expiration>
      <AccessKeyId>${c.accessKeyId}</AccessKeyId>
    </Credentials>
    <Provider>${xmlEscape(provider)}</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>${randomUUID()}</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>
`,
      };
    },
    {
      status: 200,
      contentType: 'text/html',
      body: '<html><body>Service Unavailable</body></html>',
    },
  );
  return Object.assign(standIn, { issued });
}
