// Plain HTTP for operators and orchestrators: /healthz (the process is up), /readyz (datastore
// reachable and authorities active), /metrics (Prometheus).
import Fastify, { type FastifyInstance, type RouteHandlerMethod } from 'fastify';
import type { Registry } from 'prom-client';
import { routesOf, type RouteId } from './routes.ts';

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
  const handlers: Partial<Record<RouteId, RouteHandlerMethod>> = {
    healthz: async () => ({ status: 'ok' }),
    readyz: async (_req, reply) => {
      try {
        await d.checkReady();
        return { status: 'ready' };
      } catch (e) {
        return reply.code(503).send({ status: 'not ready', reason: (e as Error).message });
      }
    },
    metrics: async (_req, reply) => {
      reply.header('content-type', d.registry.contentType);
      return d.registry.metrics();
    },
  };
  for (const route of routesOf('health')) {
    const handler = handlers[route.id as RouteId];
    if (!handler) throw new TypeError(`health route ${route.id} has no handler`);
    app.route({ method: route.method, url: route.path, handler });
  }
  await app.listen({ host, port });
  return app;
}
