/**
 * HSM signing benchmark: raw pkcs11js C_Sign/s against credbroker's HsmSigner (which verifies
 * every signature in software), per key type, in one run on one SoftHSM token made for it.
 *
 *   npm run bench -- hsm [--seconds 1.5] [--sessions 4] [--types P-256,P-384,RSA-3072,Ed25519]
 */
import { performance, monitorEventLoopDelay } from 'node:perf_hooks';
import { verify as cryptoVerify, sign as cryptoSign, generateKeyPairSync } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { KEY_TYPES, type KeyType } from '../../src/core/index.js';
import { HsmSigner, HsmToken, KEY_SPECS, Pkcs11Library, findTokenByLabel } from '../../src/hsm/index.js';
import { createTestToken } from '../../test/helpers/softhsm.js';

interface Options {
  seconds: number;
  sessions: number;
  types: KeyType[];
}

function parseOptions(args: string[]): Options {
  const options: Options = { seconds: 1.5, sessions: 4, types: [...KEY_TYPES] };
  for (let i = 0; i < args.length; i++) {
    const value = args[i + 1] ?? '';
    switch (args[i]) {
      case '--seconds':
        options.seconds = Math.min(30, Math.max(0.2, Number(value)));
        i++;
        break;
      case '--sessions':
        options.sessions = Math.min(16, Math.max(1, Number(value)));
        i++;
        break;
      case '--types':
        options.types = value.split(',').filter((t): t is KeyType => (KEY_TYPES as readonly string[]).includes(t));
        i++;
        break;
      default:
        throw new Error(`unknown option ${args[i]}`);
    }
  }
  return options;
}

/** Upper bound on operations per measurement, whatever the speed. */
const MAX_OPS = 2_000_000;

function rate(count: number, startMs: number): number {
  return count / ((performance.now() - startMs) / 1000);
}

function rawSync(api: pkcs11js.PKCS11, session: Buffer, key: Buffer, keyType: KeyType, seconds: number): number {
  const spec = KEY_SPECS[keyType];
  const input = spec.prepare(Buffer.from('credbroker benchmark message: a to-be-signed certificate would be here'));
  const deadline = performance.now() + seconds * 1000;
  const start = performance.now();
  let count = 0;
  while (count < MAX_OPS && (count & 15 || performance.now() < deadline)) {
    api.C_SignInit(session, { mechanism: spec.signMechanism }, key);
    api.C_Sign(session, input, Buffer.alloc(spec.signatureBytes));
    count++;
  }
  return rate(count, start);
}

async function rawAsync(api: pkcs11js.PKCS11, sessions: Buffer[], key: Buffer, keyType: KeyType, seconds: number): Promise<number> {
  const spec = KEY_SPECS[keyType];
  const input = spec.prepare(Buffer.from('credbroker benchmark message: a to-be-signed certificate would be here'));
  const deadline = performance.now() + seconds * 1000;
  const start = performance.now();
  let count = 0;
  await Promise.all(
    sessions.map(async (session) => {
      while (count < MAX_OPS && performance.now() < deadline) {
        api.C_SignInit(session, { mechanism: spec.signMechanism }, key);
        await api.C_SignAsync(session, input, Buffer.alloc(spec.signatureBytes));
        count++;
      }
    }),
  );
  return rate(count, start);
}

async function signerRate(signer: HsmSigner, seconds: number, concurrency: number): Promise<{ perSecond: number; maxLagMs: number }> {
  const data = Buffer.from('credbroker benchmark message: a to-be-signed certificate would be here');
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  const deadline = performance.now() + seconds * 1000;
  const start = performance.now();
  let count = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (count < MAX_OPS && performance.now() < deadline) {
        await signer.sign(data);
        count++;
      }
    }),
  );
  const perSecond = rate(count, start);
  histogram.disable();
  return { perSecond, maxLagMs: histogram.max / 1e6 };
}

function softwareVerifyRate(seconds: number): number {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const data = Buffer.from('credbroker benchmark message');
  const signature = cryptoSign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  const deadline = performance.now() + seconds * 1000;
  const start = performance.now();
  let count = 0;
  while (count < MAX_OPS && (count & 15 || performance.now() < deadline)) {
    cryptoVerify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature);
    count++;
  }
  return rate(count, start);
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US').padStart(9);
const pct = (n: number): string => `${(n * 100).toFixed(0)} %`.padStart(7);

/** Runs the HSM benchmark and prints a table and the targets. */
export async function run(args: string[]): Promise<void> {
  const options = parseOptions(args);
  const started = performance.now();
  process.stdout.write(`credbroker bench hsm: ${options.seconds}s per measurement, ${options.sessions} sessions, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}\n`);
  const testToken = createTestToken('bench');
  const token = await HsmToken.open({ modulePath: testToken.modulePath, tokenLabel: testToken.label, pin: testToken.pin, sessions: options.sessions });
  const library = Pkcs11Library.acquire(testToken.modulePath);
  const api = library.api;
  const { slot } = findTokenByLabel(api, testToken.label);
  const rawSessions = Array.from({ length: options.sessions }, () => api.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION));
  const results: { keyType: KeyType; rawSync: number; rawAsync: number; auto: number; sync: number; async: number; mode: string; lagMs: number }[] = [];
  try {
    process.stdout.write(`software P-256 verify (node:crypto): ${fmt(softwareVerifyRate(options.seconds))}/s\n`);
    for (const keyType of options.types) {
      process.stdout.write(`[${keyType}] generating key on the token…\n`);
      const label = `bench-${keyType}`;
      await token.generateKeyPair({ label, keyType });
      api.C_FindObjectsInit(rawSessions[0]!, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }, { type: pkcs11js.CKA_LABEL, value: label }]);
      const key = api.C_FindObjects(rawSessions[0]!, 1)[0]!;
      api.C_FindObjectsFinal(rawSessions[0]!);
      const signer = await HsmSigner.create(token, label);
      process.stdout.write(`[${keyType}] raw C_Sign sync, 1 session…\n`);
      const syncRaw = rawSync(api, rawSessions[0]!, key, keyType, options.seconds);
      process.stdout.write(`[${keyType}] raw C_SignAsync, ${options.sessions} sessions…\n`);
      const asyncRaw = await rawAsync(api, rawSessions, key, keyType, options.seconds);
      process.stdout.write(`[${keyType}] HsmSigner (sign + verify), auto/sync/async modes…\n`);
      const auto = await signerRate(signer, options.seconds, 64);
      const modes: Record<'sync' | 'async', number> = { sync: 0, async: 0 };
      for (const mode of ['sync', 'async'] as const) {
        const forced = await HsmToken.open({ modulePath: testToken.modulePath, tokenLabel: testToken.label, pin: testToken.pin, sessions: options.sessions, signMode: mode });
        modes[mode] = (await signerRate(await HsmSigner.create(forced, label), options.seconds, 64)).perSecond;
        await forced.close();
      }
      results.push({ keyType, rawSync: syncRaw, rawAsync: asyncRaw, auto: auto.perSecond, sync: modes.sync, async: modes.async, mode: token.signModeFor(keyType), lagMs: auto.maxLagMs });
    }
  } finally {
    for (const session of rawSessions) api.C_CloseSession(session);
    library.release();
    await token.close();
  }
  process.stdout.write('\nsignatures per second (higher is better); ratio = HsmSigner auto ÷ raw C_Sign sync on 1 session\n');
  process.stdout.write('key type   raw sync  raw async  signer auto (mode)  signer sync  signer async    ratio  max loop lag\n');
  for (const r of results) {
    process.stdout.write(
      `${r.keyType.padEnd(9)}${fmt(r.rawSync)}  ${fmt(r.rawAsync)}  ${fmt(r.auto)} (${r.mode.padEnd(5)})    ${fmt(r.sync)}     ${fmt(r.async)} ${pct(r.auto / r.rawSync)}  ${r.lagMs.toFixed(1)} ms\n`,
    );
  }
  const targets: [KeyType, number][] = [['P-256', 0.4], ['P-384', 0.85], ['RSA-3072', 0.85]];
  process.stdout.write('\ntargets:\n');
  for (const [keyType, target] of targets) {
    const r = results.find((x) => x.keyType === keyType);
    if (r === undefined) continue;
    const ratio = r.auto / r.rawSync;
    process.stdout.write(`  ${keyType}: ${pct(ratio)} of raw (target >= ${pct(target).trim()}) ${ratio >= target ? 'met' : 'MISSED'}\n`);
  }
  process.stdout.write(`\ndone in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
}
