// Composition of the audit layer's outside parts: signed checkpoints of the head (key in the
// data dir, a file or HTTP sink) and the SIEM export sinks, each fed from the audit table by its
// own cursor. Wiring only: reads the files the config names and builds the adapters.
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Clock } from '../../core/clock.ts';
import { CHECKPOINT_KEY_FILE } from '../../core/audit-checkpoint.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import type { Store } from '../../store/types.ts';
import type { Auditor } from '../audit/auditor.ts';
import { openCheckpointFile } from '../audit/checkpoint-file-sink.ts';
import { httpCheckpointSink } from '../audit/checkpoint-http-sink.ts';
import { loadOrCreateCheckpointKey } from '../audit/checkpoint-key.ts';
import { CheckpointWriter, type CheckpointSink } from '../audit/checkpoint-writer.ts';
import { cursorFile } from '../audit/export-cursor.ts';
import type { ExportSink } from '../audit/export-record.ts';
import { AuditExporter } from '../audit/exporter.ts';
import { openFileSink } from '../audit/file-sink.ts';
import { syslogSink } from '../audit/syslog-sink.ts';
import { webhookSink } from '../audit/webhook-sink.ts';
import type { ServerConfig } from './config/compile.ts';
import type { Task } from './tasks.ts';

type SinkConfig = ServerConfig['audit']['sinks'][number];

/** Below the data dir: one cursor file per export sink. */
export const AUDIT_SINKS_DIR = 'audit-sinks';

/** Files in the data dir written atomically here (temp files of an interrupted write are ours). */
export const isAuditFileName = (name: string): boolean => name === CHECKPOINT_KEY_FILE;
export const isCursorFileName = (name: string): boolean =>
  /^[a-z0-9][a-z0-9_-]*\.cursor$/.test(name);

export interface AuditOutside {
  /** Periodic tasks (checkpoints) for the server's task list. */
  readonly tasks: Task[];
  /** Starts the export sinks. */
  start(): void;
  /** Stops the sinks and writes the shutdown checkpoint; call before the store closes. */
  stop(): Promise<void>;
}

export async function buildAudit(
  config: ServerConfig,
  d: {
    store: Store;
    auditor: Pick<Auditor, 'onAppend'>;
    clock: Clock;
    log: Logger;
    registry: Registry;
    serverId: string;
  },
): Promise<AuditOutside> {
  const m = auditMetrics(d.registry);
  const checkpoints = config.audit.checkpoints.enabled ? await buildCheckpoints(config, d) : null;
  const writer = checkpoints?.writer ?? null;
  const exporters: AuditExporter[] = [];
  for (const sink of config.audit.sinks) {
    exporters.push(
      new AuditExporter({
        name: sink.name,
        sink: await buildSink(sink, d.log),
        audit: d.store.audit,
        cursor: cursorFile(await cursorPath(config.data_dir, sink.name)),
        trustDomain: config.trust_domain,
        start: sink.start,
        batchSize: sink.batch_size,
        pollMs: sink.poll_interval,
        maxBackoffMs: sink.max_backoff,
        onAppend: (l) => d.auditor.onAppend(l),
        log: d.log,
        metrics: {
          delivered: (n) => m.delivered.inc({ sink: sink.name }, n),
          failed: () => m.failures.inc({ sink: sink.name }),
          lag: (n) => m.lag.set({ sink: sink.name }, n),
        },
      }),
    );
  }
  const stopping = new AbortController();
  let running: Promise<void>[] = [];
  const checkpoint = async (always: boolean) => {
    try {
      if (await writer?.checkpoint(always)) m.checkpoints.inc();
    } catch (e) {
      m.checkpointFailures.inc();
      d.log.error({ err: (e as Error).message }, 'audit checkpoint could not be written');
      throw e;
    }
  };
  return {
    tasks: writer
      ? [
          {
            name: 'audit-checkpoint',
            everyMs: config.audit.checkpoints.interval,
            run: () => checkpoint(false),
          },
        ]
      : [],
    start() {
      checkpoints?.announce();
      running = exporters.map((e) => e.run(stopping.signal));
      void checkpoint(false).catch(() => {});
    },
    async stop() {
      if (stopping.signal.aborted) return;
      stopping.abort();
      await Promise.all(running);
      await checkpoint(true).catch(() => {});
      await writer?.close().catch(() => {});
    },
  };
}

async function buildCheckpoints(
  config: ServerConfig,
  d: { store: Store; clock: Clock; log: Logger; serverId: string },
): Promise<{ writer: CheckpointWriter; announce: () => void }> {
  const c = config.audit.checkpoints;
  const key = await loadOrCreateCheckpointKey(
    c.key_file || path.join(config.data_dir, CHECKPOINT_KEY_FILE),
  );
  let sink: CheckpointSink;
  if (c.sink.type === 'file') {
    sink = await openCheckpointFile(
      c.sink.path || path.join(config.data_dir, 'audit-checkpoints.jsonl'),
    );
  } else {
    sink = httpCheckpointSink({
      url: c.sink.url,
      timeoutMs: c.sink.timeout,
      attempts: c.sink.attempts,
    });
  }
  const writer = new CheckpointWriter({
    audit: d.store.audit,
    clock: d.clock,
    key,
    trustDomain: config.trust_domain,
    serverId: d.serverId,
    sink,
  });
  // Printed once the server is up (a start that fails prints only its error).
  const announce = () =>
    d.log.info(
      { keyId: key.keyId, publicKey: key.publicPem, created: key.created },
      'audit checkpoint key (keep the public key outside this server: tessera audit checkpoint-key)',
    );
  return { writer, announce };
}

async function buildSink(s: SinkConfig, log: Logger): Promise<ExportSink> {
  switch (s.type) {
    case 'file':
      return openFileSink({
        path: s.path,
        maxBytes: s.max_bytes,
        keep: s.keep,
        fsync: s.fsync,
        fsyncIntervalMs: s.fsync_interval,
      });
    case 'syslog': {
      const i = s.address.lastIndexOf(':');
      const host = s.address.slice(0, i).replace(/^\[|\]$/g, '');
      return syslogSink({
        host,
        port: Number(s.address.slice(i + 1)),
        ...(s.tls
          ? {
              tls: {
                ca: await readFile(s.tls.ca_file, 'utf8'),
                serverName: s.tls.server_name || host,
              },
            }
          : {}),
        facility: s.facility,
        appName: s.app_name,
        connectTimeoutMs: s.connect_timeout,
      });
    }
    case 'webhook': {
      const secret = Buffer.from((await readFile(s.secret_file, 'utf8')).replace(/\r?\n$/, ''));
      if (secret.length < 16)
        throw new InvalidArgumentError(
          `config: audit.sinks: ${s.name}: secret_file must hold at least 16 bytes`,
        );
      return webhookSink({
        url: s.url,
        secret,
        timeoutMs: s.timeout,
        attempts: s.attempts,
        onRetry: (attempt, why) => log.warn({ sink: s.name, attempt, why }, 'audit webhook retry'),
      });
    }
  }
}

async function cursorPath(dataDir: string, name: string): Promise<string> {
  const dir = path.join(dataDir, AUDIT_SINKS_DIR);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return path.join(dir, `${name}.cursor`);
}

function auditMetrics(registry: Registry) {
  return {
    delivered: new Counter({
      name: 'tessera_audit_sink_delivered_total',
      help: 'Audit records delivered, by export sink',
      labelNames: ['sink'],
      registers: [registry],
    }),
    failures: new Counter({
      name: 'tessera_audit_sink_failures_total',
      help: 'Failed delivery attempts, by export sink (records wait in the database)',
      labelNames: ['sink'],
      registers: [registry],
    }),
    lag: new Gauge({
      name: 'tessera_audit_sink_lag_records',
      help: 'Audit records not yet delivered, by export sink',
      labelNames: ['sink'],
      registers: [registry],
    }),
    checkpoints: new Counter({
      name: 'tessera_audit_checkpoints_total',
      help: 'Signed audit checkpoints written',
      registers: [registry],
    }),
    checkpointFailures: new Counter({
      name: 'tessera_audit_checkpoint_failures_total',
      help: 'Audit checkpoints that could not be written',
      registers: [registry],
    }),
  };
}
