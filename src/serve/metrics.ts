/**
 * The server's Prometheus metrics (prom-client), in a registry of its own so that several
 * servers in one process (tests) keep theirs apart: requests and errors by route and status,
 * request latency, and per model the batch sizes and forward-pass times; plus Node's process
 * metrics (CPU, memory, event-loop lag).
 */
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'fmnist_http_requests_total',
    help: 'HTTP requests answered, by route and status code',
    labelNames: ['route', 'status'] as const,
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: 'fmnist_http_errors_total',
    help: 'HTTP requests answered with a 4xx or 5xx status, by route and status code',
    labelNames: ['route', 'status'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'fmnist_http_request_duration_seconds',
    help: 'Time from a request arriving to its response being sent, by route',
    labelNames: ['route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [this.registry],
  });
  readonly batchSize = new Histogram({
    name: 'fmnist_batch_size_images',
    help: 'Images per forward pass, by model',
    labelNames: ['model'] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [this.registry],
  });
  readonly passDuration = new Histogram({
    name: 'fmnist_forward_pass_duration_seconds',
    help: 'Time of one batched forward pass, by model',
    labelNames: ['model'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'fmnist_' });
  }

  /** Records one answered request; `route` is the route's pattern (never the raw URL, which a client could vary without end). */
  recordRequest(route: string, status: number, seconds: number): void {
    this.requests.inc({ route, status });
    if (status >= 400) this.errors.inc({ route, status });
    this.latency.observe({ route }, seconds);
  }

  recordBatch(model: string, images: number, seconds: number): void {
    this.batchSize.observe({ model }, images);
    this.passDuration.observe({ model }, seconds);
  }
}
