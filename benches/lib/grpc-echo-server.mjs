#!/usr/bin/env node
// The gRPC backends of the grpc-unary workload: `node grpc-echo-server.mjs PORT...` starts one
// @grpc/grpc-js server per port in this process, each answering bench.Echo/Echo with the
// request's bytes, and prints `ready` once all of them listen. Also exports the service
// definition the load client uses (raw bytes in and out: no .proto file, no codegen).
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';

const raw = (b) => b;

/** bench.Echo: one unary method, Echo, whose messages are opaque bytes (identity (de)serializers). */
export const ECHO_SERVICE = {
  echo: {
    path: '/bench.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: raw,
    responseDeserialize: raw,
  },
};

/** Start an echo server on 127.0.0.1:port; resolves with the server once it listens. */
export function startEchoServer(port) {
  const server = new grpc.Server({ 'grpc.max_concurrent_streams': 1024 });
  server.addService(ECHO_SERVICE, { echo: (call, cb) => cb(null, call.request) });
  return new Promise((resolve, reject) => {
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve(server)));
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const ports = process.argv.slice(2).map(Number);
  if (!ports.length || ports.some((p) => !(p > 0))) {
    process.stderr.write('usage: grpc-echo-server.mjs PORT...\n');
    process.exit(2);
  }
  try {
    await Promise.all(ports.map(startEchoServer));
    process.stdout.write('ready\n');
  } catch (e) {
    process.stderr.write(`grpc-echo-server: ${e.message}\n`);
    process.exit(1);
  }
}
