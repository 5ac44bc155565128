// The one dedicated LISTEN connection of a PostgreSQL store: receives the commit announcements
// other servers sharing the database send (NOTIFY inside their writing transaction, so only
// committed writes are announced) and hands them to this store's listeners.
//
// Notifications sent while this connection is down are lost by PostgreSQL's design. So after
// every (re)connect every topic is announced as `resync`: followers read at once and catch up
// from their own cursor. While down, it reconnects with capped, jittered exponential backoff.
import pg from 'pg';
import { COMMIT_TOPICS, type CommitSource, type CommitTopic } from '../types.ts';

export interface PostgresListenerOptions {
  readonly url: string;
  readonly connectTimeoutMs: number;
  /** Channel name (any text; quoted for LISTEN). */
  readonly channel: string;
  /** This store's id in payloads: its own announcements are delivered in-process already. */
  readonly origin: string;
  readonly deliver: (topic: CommitTopic, source: CommitSource) => void;
  /** Reconnect delays: first and cap, in ms. */
  readonly backoff?: { readonly firstMs: number; readonly maxMs: number };
  /** A round trip on the idle connection this often, so a silently dead one is replaced. */
  readonly heartbeatMs?: number;
}

/** `<topic> <origin>`: what a writer sends with pg_notify. */
export function notifyPayload(topic: CommitTopic, origin: string): string {
  return `${topic} ${origin}`;
}

export class PostgresListener {
  readonly #o: Required<PostgresListenerOptions>;
  #client: pg.Client | null = null;
  #attempt = 0;
  #timer: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #closed = false;
  #connected = false;

  private constructor(o: PostgresListenerOptions) {
    this.#o = {
      backoff: { firstMs: 100, maxMs: 5_000 },
      heartbeatMs: 15_000,
      ...o,
    };
  }

  /**
   * Connects and listens before resolving when the database answers; otherwise resolves at once
   * and keeps retrying in the background (the store works without it: followers poll).
   */
  static async start(o: PostgresListenerOptions): Promise<PostgresListener> {
    const l = new PostgresListener(o);
    await l.#connect();
    return l;
  }

  /** Whether the LISTEN connection is up (for tests and readiness reporting). */
  get listening(): boolean {
    return this.#connected;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearInterval(this.#heartbeat);
    const c = this.#client;
    this.#client = null;
    this.#connected = false;
    await c?.end().catch(() => {});
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    const client = new pg.Client({
      connectionString: this.#o.url,
      connectionTimeoutMillis: this.#o.connectTimeoutMs,
      keepAlive: true,
      // Bounds the LISTEN and the heartbeat: a connection that stopped answering is replaced.
      query_timeout: Math.max(this.#o.connectTimeoutMs, 5_000),
    });
    let lost = false;
    const onLost = () => {
      if (lost) return;
      lost = true;
      if (this.#client === client) {
        this.#client = null;
        this.#connected = false;
        clearInterval(this.#heartbeat);
      }
      client.end().catch(() => {});
      this.#schedule();
    };
    // Unheard, a connection error would crash the process.
    client.on('error', onLost);
    client.on('end', onLost);
    client.on('notification', (msg) => this.#onNotification(msg));
    try {
      await client.connect();
      await client.query(`LISTEN ${client.escapeIdentifier(this.#o.channel)}`);
    } catch {
      onLost();
      return;
    }
    if (this.#closed || lost) {
      await client.end().catch(() => {});
      return;
    }
    this.#client = client;
    this.#connected = true;
    this.#attempt = 0;
    this.#heartbeat = setInterval(() => {
      client.query('select 1').catch(onLost);
    }, this.#o.heartbeatMs);
    this.#heartbeat.unref();
    // Anything committed while no connection listened was announced to nobody.
    for (const topic of COMMIT_TOPICS) this.#o.deliver(topic, 'resync');
  }

  #schedule(): void {
    if (this.#closed || this.#timer !== undefined) return;
    const { firstMs, maxMs } = this.#o.backoff;
    const ceiling = Math.min(maxMs, firstMs * 2 ** Math.min(this.#attempt++, 20));
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#connect();
    }, delay);
    this.#timer.unref();
  }

  #onNotification(msg: pg.Notification): void {
    if (msg.channel !== this.#o.channel) return;
    const [topic, origin] = (msg.payload ?? '').split(' ');
    if (origin === this.#o.origin) return;
    const known = COMMIT_TOPICS.find((t) => t === topic);
    if (known) this.#o.deliver(known, 'remote');
  }
}
