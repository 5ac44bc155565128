// The access revision feed: follows `access` commits (coalesced) and its periodic refresh.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach, it } from 'node:test';
import { ManualClock } from '../../core/clock.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/types.ts';
import { AccessRevisionFeed } from './access-revision-feed.ts';

let dir = '';
let n = 0;
let store: Store;
before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-arf-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(async () => {
  store = await openStore(
    { kind: 'sqlite', path: path.join(dir, `s${n++}.db`) },
    new ManualClock(0),
  );
});
afterEach(() => store.close());

async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

it('starts at the stored value and hears each new one after an `access` commit', async () => {
  const feed = await AccessRevisionFeed.start(store, (e) => assert.fail(String(e)));
  const start = feed.current;
  assert.equal(start, await store.accessRevision.current());
  const heard: number[] = [];
  feed.onChange((r) => heard.push(r));
  await store.accessRevision.bump();
  await waitFor(() => feed.current === start + 1);
  // A burst is coalesced: listeners hear the last value, each value at most once.
  await Promise.all([store.accessRevision.bump(), store.accessRevision.bump()]);
  await waitFor(() => feed.current === start + 3);
  assert.equal(heard[0], start + 1);
  assert.equal(heard.at(-1), start + 3);
  assert.equal(new Set(heard).size, heard.length);
  feed.stop();
});

it('refresh() catches a change no notification announced; stop() ends following', async () => {
  const feed = await AccessRevisionFeed.start(store, () => {});
  feed.stop();
  const start = feed.current;
  await store.accessRevision.bump();
  assert.equal(feed.current, start, 'not following after stop()');
  await feed.refresh();
  assert.equal(feed.current, start + 1);
});
