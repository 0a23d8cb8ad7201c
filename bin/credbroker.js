#!/usr/bin/env node
// Launcher for `credbroker`. Sets the libuv thread-pool size before anything can start the pool
// (asynchronous PKCS#11 calls run there; size it to at least hsm.sessions), then runs the built
// CLI, or the TypeScript sources through tsx in a development checkout.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

process.env.UV_THREADPOOL_SIZE ??= '8';
const built = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
let entry = built;
if (!existsSync(built)) {
  const { register } = await import('tsx/esm/api');
  register();
  entry = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
}
const { main } = await import(pathToFileURL(entry).href);
process.exitCode = await main(process.argv.slice(2));
