// Plain HTTP for operators and orchestrators: /healthz (the process is up), /readyz (datastore
// reachable and authorities active), /metrics (Prometheus).
import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

export interface HealthDeps {
  registry: Registry;
  /** Resolves when ready; rejects with the reason otherwise. */
  checkReady(): Promise<void>;
}

export async function startHealthServer(
  host: string,
  port: number,
  d: HealthDeps,
): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, bodyLimit: 1024 });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    try {
      await d.checkReady();
      return { status: 'ready' };
    } catch (e) {
      return reply.code(503).send({ status: 'not ready', reason: (e as Error).message });
    }
  });
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', d.registry.contentType);
    return d.registry.metrics();
  });
  await app.listen({ host, port });
  return app;
}
