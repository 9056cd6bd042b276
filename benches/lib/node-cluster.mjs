// What the two Node proxies of the benchmark (benches/node-proxy.mjs, benches/node-http-proxy.mjs)
// share: address parsing and running N node:cluster workers on the same listening sockets.
import cluster from 'node:cluster';

/** "127.0.0.1:8080" → { host, port }. */
export function hostPort(s) {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
}

/**
 * Run `serve()` in this process (workers = 1), or in `workers` node:cluster workers sharing the
 * listening sockets with SCHED_NONE: the kernel hands out connections. Node's default on Linux,
 * SCHED_RR, passes every accepted connection from the primary to a worker over IPC and measured
 * about half the connection rate here, so it would make these baselines look worse than what a
 * careful Node user gets.
 */
export function runWorkers(workers, serve) {
  if (workers > 1 && cluster.isPrimary) {
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    for (let i = 0; i < workers; i++) cluster.fork();
    cluster.on('exit', () => process.exit(1));
    const stop = () => {
      for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
      process.exit(0);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  } else serve();
}
