// Export sink: RFC 5424 syslog messages over TCP with octet-counting framing (RFC 6587 §3.4.1:
// "<length> <message>"), optionally TLS (RFC 5425) with a CA file. The structured data carries
// seq and hashes, the message the whole record as JSON. TCP syslog has no acknowledgements: a
// batch counts as delivered once the socket accepted it, and after a connection error the batch
// is sent again (a receiver may see a record twice; the seq tells).
import net from 'node:net';
import { hostname } from 'node:os';
import tls from 'node:tls';
import type { ExportSink, ExportedRecord } from './export-record.ts';

export interface SyslogSinkOptions {
  host: string;
  port: number;
  /** PEM CA certificates; absent = plain TCP. */
  tls?: { ca: string; serverName: string };
  /** 0..23; 10 = authpriv. */
  facility: number;
  appName: string;
  connectTimeoutMs: number;
}

/** Private enterprise number for the structured data ID (32473 is IANA's documentation PEN). */
const SD_ID = 'tessera@32473';

const SEVERITY: Record<string, number> = { success: 6, denied: 4, error: 3 };

export function syslogMessage(
  r: ExportedRecord,
  o: Pick<SyslogSinkOptions, 'facility' | 'appName'>,
  host = hostname(),
): string {
  const pri = o.facility * 8 + (SEVERITY[r.outcome] ?? 5);
  const msgId = printable(r.action, 32);
  const sd = `[${SD_ID} seq="${r.seq}" hash="${r.hash}" prevHash="${r.prevHash}" outcome="${sdEscape(r.outcome)}"]`;
  return `<${pri}>1 ${new Date(r.time).toISOString()} ${printable(host, 255)} ${printable(o.appName, 48)} ${process.pid} ${msgId} ${sd} \uFEFF${JSON.stringify(r)}`;
}

/** RFC 6587 octet counting: the length is in octets of the UTF-8 message. */
export function frame(message: string): Buffer {
  const body = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `), body]);
}

function printable(s: string, max: number): string {
  const v = s.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return v === '' ? '-' : v;
}

function sdEscape(s: string): string {
  return s.replace(/["\\\]]/g, (c) => `\\${c}`);
}

export function syslogSink(o: SyslogSinkOptions): ExportSink {
  let socket: net.Socket | null = null;

  const connect = (signal: AbortSignal) =>
    new Promise<net.Socket>((resolve, reject) => {
      const s = o.tls
        ? tls.connect({
            host: o.host,
            port: o.port,
            ca: o.tls.ca,
            // SNI takes no IP address; the certificate is then checked against the host itself.
            ...(net.isIP(o.tls.serverName) ? {} : { servername: o.tls.serverName }),
            checkServerIdentity: (_host, cert) =>
              tls.checkServerIdentity(o.tls?.serverName ?? o.host, cert),
          })
        : net.connect({ host: o.host, port: o.port });
      const timer = setTimeout(
        () => fail(new Error(`connect timeout after ${o.connectTimeoutMs} ms`)),
        o.connectTimeoutMs,
      );
      const onAbort = () => fail(new Error('stopping'));
      signal.addEventListener('abort', onAbort, { once: true });
      function fail(e: Error) {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        s.destroy();
        reject(e);
      }
      s.once('error', fail);
      s.once(o.tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        s.off('error', fail);
        // A later error or close drops the connection; the next batch reconnects.
        s.on('error', () => s.destroy());
        s.once('close', () => {
          if (socket === s) socket = null;
        });
        // Nothing is read from a syslog receiver.
        s.resume();
        resolve(s);
      });
    });

  return {
    async deliver(records, signal) {
      socket ??= await connect(signal);
      const s = socket;
      const data = Buffer.concat(records.map((r) => frame(syslogMessage(r, o))));
      await new Promise<void>((resolve, reject) => {
        const onClose = () => reject(new Error('syslog connection closed'));
        s.once('close', onClose);
        s.write(data, (e) => {
          s.off('close', onClose);
          if (e) {
            s.destroy();
            reject(e);
          } else resolve();
        });
      });
    },
    async close() {
      const s = socket;
      socket = null;
      if (!s) return;
      await new Promise<void>((resolve) => {
        s.once('close', () => resolve());
        s.end();
        setTimeout(() => s.destroy(), 2000).unref();
      });
    },
  };
}
