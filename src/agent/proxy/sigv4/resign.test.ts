// The re-signer against AWS's published example of a signed streaming upload
// (docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html): a request signed with
// placeholder keys, re-signed with the example's keys, must carry exactly the documented seed
// and chunk signatures. And the refusals: each names what is malformed.
import { strict as assert } from 'node:assert';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { ManualClock } from '../../../core/clock.ts';
import { InvalidArgumentError } from '../../../core/errors.ts';
import { resignSigV4, type SigV4Head } from './resign.ts';

const EXAMPLE_KEYS = {
  accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  sessionToken: '',
};
const SEED = '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9';
const CHUNK_1 = 'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648';
const CHUNK_2 = '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497';
const FINAL = 'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9';
const PLACEHOLDER_SIG = '0'.repeat(64);
const SIGNED =
  'content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;' +
  'x-amz-decoded-content-length;x-amz-storage-class';
const clock = new ManualClock(Date.UTC(2013, 4, 24, 0, 3));

function chunkedBody(signatures: readonly string[]): Buffer {
  const [s1, s2, s3] = signatures as [string, string, string];
  return Buffer.concat([
    Buffer.from(`10000;chunk-signature=${s1}\r\n`),
    Buffer.alloc(65536, 'a'),
    Buffer.from(`\r\n400;chunk-signature=${s2}\r\n`),
    Buffer.alloc(1024, 'a'),
    Buffer.from(`\r\n0;chunk-signature=${s3}\r\n\r\n`),
  ]);
}

function exampleHead(overrides: Record<string, string | undefined> = {}): SigV4Head {
  const headers: Record<string, string | undefined> = {
    host: 's3.amazonaws.com',
    'x-amz-date': '20130524T000000Z',
    'x-amz-storage-class': 'REDUCED_REDUNDANCY',
    authorization:
      'AWS4-HMAC-SHA256 Credential=PLACEHOLDER/20130524/us-east-1/s3/aws4_request,' +
      `SignedHeaders=${SIGNED},Signature=${PLACEHOLDER_SIG}`,
    'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
    'content-encoding': 'aws-chunked',
    'x-amz-decoded-content-length': '66560',
    'content-length': '66824',
    ...overrides,
  };
  return { method: 'PUT', path: '/examplebucket/chunkObject.txt', query: '', headers };
}

const placeholderBody = () =>
  Readable.from([chunkedBody([PLACEHOLDER_SIG, '1'.repeat(64), '2'.repeat(64)])]);

describe('resignSigV4 (AWS streaming example)', () => {
  it('re-signs the seed and every chunk exactly as AWS documents', async () => {
    const out = await resignSigV4(exampleHead(), placeholderBody(), EXAMPLE_KEYS, { clock });
    assert.equal(
      out.headers.authorization,
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, ' +
        `SignedHeaders=${SIGNED}, Signature=${SEED}`,
    );
    assert.equal(out.headers['x-amz-security-token'], undefined);
    const body = await buffer(out.body);
    assert.equal(body.length, 66824);
    assert.ok(body.equals(chunkedBody([CHUNK_1, CHUNK_2, FINAL])));
  });

  it('adds the brokered session token to the signed headers and drops a placeholder one', async () => {
    const head = exampleHead({ 'x-amz-security-token': 'placeholder-token' });
    const out = await resignSigV4(
      head,
      placeholderBody(),
      { ...EXAMPLE_KEYS, sessionToken: 'brokered-session' },
      { clock },
    );
    assert.equal(out.headers['x-amz-security-token'], 'brokered-session');
    assert.match(String(out.headers.authorization), /SignedHeaders=[^,]*;x-amz-security-token;/);
    const without = await resignSigV4(
      exampleHead({
        'x-amz-security-token': 'placeholder-token',
        authorization:
          'AWS4-HMAC-SHA256 Credential=PLACEHOLDER/20130524/us-east-1/s3/aws4_request,' +
          `SignedHeaders=${SIGNED.replace('x-amz-storage', 'x-amz-security-token;x-amz-storage')},Signature=${PLACEHOLDER_SIG}`,
      }),
      placeholderBody(),
      EXAMPLE_KEYS,
      { clock },
    );
    assert.equal(without.headers['x-amz-security-token'], undefined);
    assert.match(String(without.headers.authorization), new RegExp(`Signature=${SEED}$`));
  });
});

async function refused(
  head: SigV4Head,
  message: RegExp,
  body: Readable = placeholderBody(),
): Promise<void> {
  await assert.rejects(resignSigV4(head, body, EXAMPLE_KEYS, { clock }), (e: unknown) => {
    assert.ok(e instanceof InvalidArgumentError, String(e));
    assert.match(e.message, message);
    return true;
  });
}

const auth = (credential: string, signed = SIGNED, sig = PLACEHOLDER_SIG) =>
  `AWS4-HMAC-SHA256 Credential=${credential}, SignedHeaders=${signed}, Signature=${sig}`;
const SCOPE = 'PLACEHOLDER/20130524/us-east-1/s3/aws4_request';

describe('resignSigV4 refuses ill-formed requests', () => {
  const cases: [string, Record<string, string | undefined>, RegExp][] = [
    ['no Authorization', { authorization: undefined }, /no Authorization header/],
    ['another algorithm', { authorization: 'AWS AKID:abc' }, /algorithm "AWS"/],
    ['SigV4a', { authorization: `AWS4-ECDSA-P256-SHA256 Credential=${SCOPE}` }, /algorithm/],
    [
      'a short Credential',
      { authorization: auth('PLACEHOLDER/20130524/us-east-1/s3') },
      /Credential is not/,
    ],
    [
      'a bad scope date',
      { authorization: auth('P/2013-05-24/us-east-1/s3/aws4_request') },
      /scope date/,
    ],
    ['a bad region', { authorization: auth('P/20130524/US_EAST/s3/aws4_request') }, /region/],
    [
      'a bad terminator',
      { authorization: auth('P/20130524/us-east-1/s3/aws5_request') },
      /aws4_request/,
    ],
    [
      'host not signed',
      { authorization: auth(SCOPE, 'x-amz-content-sha256;x-amz-date') },
      /does not include host/,
    ],
    [
      'x-amz-date not signed',
      { authorization: auth(SCOPE, 'host;x-amz-content-sha256') },
      /does not include x-amz-date/,
    ],
    ['unsorted SignedHeaders', { authorization: auth(SCOPE, 'x-amz-date;host') }, /not sorted/],
    ['a short Signature', { authorization: auth(SCOPE, SIGNED, 'abc') }, /Signature is not 64/],
    [
      'a repeated component',
      { authorization: `${auth(SCOPE)}, Signature=${PLACEHOLDER_SIG}` },
      /Signature appears twice/,
    ],
    [
      'an unknown component',
      { authorization: `${auth(SCOPE)}, Foo=bar` },
      /unknown component "Foo"/,
    ],
    ['no X-Amz-Date', { 'x-amz-date': undefined }, /no X-Amz-Date/],
    ['a malformed X-Amz-Date', { 'x-amz-date': '2013-05-24T00:00:00Z' }, /malformed X-Amz-Date/],
    ['an impossible X-Amz-Date', { 'x-amz-date': '20130532T000000Z' }, /not a calendar time/],
    [
      'X-Amz-Date off the scope date',
      { 'x-amz-date': '20130525T000000Z' },
      /scope date is not the date/,
    ],
    [
      'a signed header missing',
      { 'x-amz-storage-class': undefined },
      /signed header x-amz-storage-class is missing/,
    ],
    [
      'S3 without x-amz-content-sha256',
      { 'x-amz-content-sha256': undefined },
      /must carry x-amz-content-sha256/,
    ],
    [
      'a malformed payload hash',
      { 'x-amz-content-sha256': 'abc' },
      /malformed x-amz-content-sha256/,
    ],
    [
      'the signed-trailer variant',
      { 'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER' },
      /STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER is not supported/,
    ],
    [
      'SigV4a streaming',
      { 'x-amz-content-sha256': 'STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD' },
      /is not supported/,
    ],
    [
      'streaming without a decoded length',
      { 'x-amz-decoded-content-length': undefined },
      /needs x-amz-decoded-content-length/,
    ],
  ];
  for (const [name, overrides, message] of cases) {
    it(name, () => refused(exampleHead(overrides), message));
  }

  it('a date outside the skew bound', async () => {
    await assert.rejects(
      resignSigV4(exampleHead(), placeholderBody(), EXAMPLE_KEYS, {
        clock: new ManualClock(Date.UTC(2013, 4, 24, 0, 16)),
      }),
      /X-Amz-Date is more than 900 s from the proxy's clock/,
    );
  });

  it('a presigned URL, a bad path, a repeated Authorization', async () => {
    await refused({ ...exampleHead(), query: 'X-Amz-Signature=abc' }, /presigned URLs/);
    await refused({ ...exampleHead(), path: 'examplebucket' }, /malformed request path/);
    await refused({ ...exampleHead(), path: '/a b' }, /malformed request path/);
    const h = exampleHead();
    await refused(
      { ...h, headers: { ...h.headers, authorization: [String(h.headers.authorization), 'x'] } },
      /authorization appears twice/,
    );
  });

  it('a body over the bound when the proxy must hash it', async () => {
    const h = exampleHead({
      authorization: auth('P/20130524/us-east-1/sts/aws4_request', 'host;x-amz-date'),
      'x-amz-content-sha256': undefined,
    });
    await assert.rejects(
      resignSigV4(h, Readable.from([Buffer.alloc(20)]), EXAMPLE_KEYS, {
        clock,
        maxHashedBodyBytes: 16,
      }),
      /the request body is over 16 bytes/,
    );
  });
});

describe('aws-chunked framing is checked as it streams', () => {
  const streamRefused = async (body: Buffer, message: RegExp, maxChunkBytes?: number) => {
    const out = await resignSigV4(exampleHead(), Readable.from([body]), EXAMPLE_KEYS, {
      clock,
      ...(maxChunkBytes === undefined ? {} : { maxChunkBytes }),
    });
    await assert.rejects(buffer(out.body), (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError, String(e));
      assert.match(e.message, message);
      return true;
    });
  };
  const good = chunkedBody([PLACEHOLDER_SIG, PLACEHOLDER_SIG, PLACEHOLDER_SIG]);

  it('a truncated body', () =>
    streamRefused(good.subarray(0, 66000), /ended before the final chunk/));
  it('data after the final chunk', () =>
    streamRefused(Buffer.concat([good, Buffer.from('x')]), /data after the final chunk/));
  it('a bad chunk header', () =>
    streamRefused(
      Buffer.from('10000;chunk-signature=zz\r\n'),
      /chunk header "10000;chunk-signature=zz"/,
    ));
  it('a chunk not followed by CRLF', () =>
    streamRefused(
      Buffer.concat([Buffer.from(`1;chunk-signature=${PLACEHOLDER_SIG}\r\n`), Buffer.from('abcd')]),
      /not followed by CRLF/,
    ));
  it('more data than the decoded length', () =>
    streamRefused(
      Buffer.from(`20000;chunk-signature=${PLACEHOLDER_SIG}\r\n`),
      /more data than x-amz-decoded-content-length 66560/,
    ));
  it('less data than the decoded length', () =>
    streamRefused(
      Buffer.from(
        `1;chunk-signature=${PLACEHOLDER_SIG}\r\na\r\n0;chunk-signature=${PLACEHOLDER_SIG}\r\n\r\n`,
      ),
      /1 data bytes, x-amz-decoded-content-length says 66560/,
    ));
  it('a chunk over the bound', () =>
    streamRefused(good, /a chunk of 65536 bytes \(at most 4096\)/, 4096));
  it('an endless header line', () => streamRefused(Buffer.alloc(200, '1'), /header line too long/));
});
