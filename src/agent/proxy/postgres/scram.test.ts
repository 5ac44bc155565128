import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ScramError, saslPrep, scramProve, scramStart, scramVerify } from './scram.ts';

// RFC 7677 section 3, the SCRAM-SHA-256 example.
const CLIENT_NONCE = 'rOprNGfwEbeRWgbNEkqO';
const SERVER_FIRST =
  'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';

test('SCRAM-SHA-256 matches the RFC 7677 example', async () => {
  const start = scramStart(CLIENT_NONCE, 'user');
  assert.equal(start.clientFirst, 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
  const proof = await scramProve(start, SERVER_FIRST, 'pencil');
  assert.equal(
    proof.clientFinal,
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  );
  scramVerify(proof, 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
});

test('a wrong server signature is refused', async () => {
  const proof = await scramProve(scramStart(CLIENT_NONCE, 'user'), SERVER_FIRST, 'pencil');
  assert.throws(
    () => scramVerify(proof, 'v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='),
    /server signature does not verify/,
  );
  assert.throws(() => scramVerify(proof, 'e=invalid-proof'), /server reported an error/);
  assert.throws(() => scramVerify(proof, 'x=1'), ScramError);
});

test('a server-first-message that does not fit is refused', async () => {
  const start = scramStart(CLIENT_NONCE);
  const bad: [string, RegExp][] = [
    ['r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096', /nonce/],
    [`r=${CLIENT_NONCE},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`, /nonce/],
    [`r=${CLIENT_NONCE}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999`, /iteration count/],
    [`r=${CLIENT_NONCE}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0`, /iteration count/],
    [`r=${CLIENT_NONCE}x,i=4096`, /lacks/],
    [`r=${CLIENT_NONCE}x,s=,i=4096`, /empty salt/],
    ['garbage', /malformed/],
  ];
  for (const [serverFirst, re] of bad) {
    await assert.rejects(scramProve(start, serverFirst, 'pw'), re, serverFirst);
  }
});

test('SASLprep keeps ASCII and maps non-ASCII spaces', () => {
  assert.equal(saslPrep('p a$$ word'), 'p a$$ word');
  assert.equal(saslPrep('a\u00a0b'), 'a b');
  assert.equal(saslPrep('I\u00adX'), 'IX');
  assert.equal(saslPrep('\u2168'), 'IX');
  // A prohibited character: the raw password, as PostgreSQL does.
  assert.equal(saslPrep('a\u0007\u00e9'), 'a\u0007\u00e9');
});

test('the kept SaltedPassword is per password, salt and iteration count', async () => {
  const prove = (serverFirst: string, password: string) =>
    scramProve(scramStart(CLIENT_NONCE, 'user'), serverFirst, password);
  const vector = (await prove(SERVER_FIRST, 'pencil')).clientFinal;
  // Another password, salt or count after it: not the kept derivation.
  assert.notEqual((await prove(SERVER_FIRST, 'pencil2')).clientFinal, vector);
  const otherSalt = SERVER_FIRST.replace(
    's=W22ZaJ0SNY7soEsUEjb6gQ==',
    's=X22ZaJ0SNY7soEsUEjb6gQ==',
  );
  assert.notEqual((await prove(otherSalt, 'pencil')).clientFinal, vector);
  assert.notEqual(
    (await prove(SERVER_FIRST.replace('i=4096', 'i=4097'), 'pencil')).clientFinal,
    vector,
  );
  // And the vector again, from the kept one, concurrently too.
  const again = await Promise.all([prove(SERVER_FIRST, 'pencil'), prove(SERVER_FIRST, 'pencil')]);
  assert.deepEqual(
    again.map((p) => p.clientFinal),
    [vector, vector],
  );
  scramVerify(again[0]!, 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
});
