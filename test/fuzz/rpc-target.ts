/**
 * Fuzzing target (b): the broker's RPCs over real mutual TLS with random message fields
 * (fast-check), against a running e2e broker (test/e2e/harness.ts).
 *
 * Two modes:
 * - `fields`: typed messages through the broker's own clients: random lengths and unicode,
 *   TTLs and page sizes from 0 to past 2^32 and negative (protobuf uint32 wraps them), random
 *   audiences, scopes, selectors, serials, page tokens, enum values by name and by number,
 *   valid and broken CSRs, from an operator, a service, and no certificate;
 * - `raw`: hand-made protobuf bytes through a client with an identity serializer: known and
 *   unknown field numbers, every wire type, varints of 10 and 11 bytes (past 64 bits),
 *   unknown enum numbers, truncated length-delimited fields and random bytes.
 *
 * Properties, per call (calls run one at a time so each write is attributable):
 * 1. the status is one of {@link DOCUMENTED_STATUSES} (never INTERNAL, UNKNOWN, UNAVAILABLE or
 *    a deadline);
 * 2. a refused call writes nothing (certificates, join tokens, revocations, rotations) but
 *    audit entries that are all denials, at most one;
 * 3. an accepted call had valid input, as far as this oracle knows: a CSR that the independent
 *    checker accepts, a join-token identity that policy names, a token audience and scopes the
 *    caller's policy allows, a revoked serial that existed;
 * 4. the broker keeps answering: GetTrustBundle succeeds every 100 cases and at the end.
 */
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { loadBrokerApi, newKeyAndCsr, unary, type BrokerClients } from '../../src/agent/index.js';
import { MAX_AUDIT_STRING_LENGTH } from '../../src/audit/index.js';
import { BLUR, IMPORT, OPERATOR, TRUST_DOMAIN, type ClientIdentity, type E2eBroker } from '../e2e/harness.js';
import { buildCsr } from '../helpers/csr-builder.js';
import { csrProblem } from './independent-csr.js';
import { FuzzReport } from './fuzz-report.js';

const API = loadBrokerApi();

/** Statuses the API documents for its calls. */
export const DOCUMENTED_STATUSES: ReadonlySet<grpc.status> = new Set([
  grpc.status.OK,
  grpc.status.INVALID_ARGUMENT,
  grpc.status.PERMISSION_DENIED,
  grpc.status.UNAUTHENTICATED,
  grpc.status.NOT_FOUND,
  grpc.status.FAILED_PRECONDITION,
  grpc.status.RESOURCE_EXHAUSTED,
]);

/** Deadline of each fuzzed call, in ms (a hang shows as DEADLINE_EXCEEDED, a crash). */
export const CALL_DEADLINE_MS = 10_000;

/** Options of {@link fuzzRpcTarget}. */
export interface RpcFuzzOptions {
  readonly seed?: number;
  readonly mode: 'fields' | 'raw';
}

/** Policy of the e2e broker (harness.ts), for the oracle of property 3. */
const TOKEN_POLICY: Readonly<Record<string, { audiences: readonly string[]; scopes: readonly string[] }>> = Object.freeze({
  [IMPORT]: { audiences: ['storage.source'], scopes: ['media.source.write'] },
  [BLUR]: { audiences: ['storage.source', 'storage.anonymized'], scopes: ['media.source.read', 'media.anonymized.write'] },
});
const POLICY_IDENTITIES: ReadonlySet<string> = new Set([OPERATOR, IMPORT, BLUR]);

/** What the store holds, read straight from the database file. */
interface StoreCounts {
  readonly certificates: number;
  readonly joinTokens: number;
  readonly usedJoinTokens: number;
  readonly revoked: number;
  readonly rotations: number;
  readonly auditSeq: number;
}

type Caller = 'operator' | 'service' | 'anonymous';

/** One fuzzed call. */
interface RpcCase {
  readonly service: 'Enrollment' | 'Certificates' | 'Administration' | 'Tokens' | 'Rotation';
  readonly method: string;
  readonly caller: Caller;
  /** Typed request (fields mode) or protobuf bytes (raw mode). */
  readonly request: Record<string, unknown> | Buffer;
}

const METHODS: readonly (readonly [RpcCase['service'], string])[] = [
  ['Enrollment', 'Enroll'],
  ['Enrollment', 'GetTrustBundle'],
  ['Certificates', 'Renew'],
  ['Certificates', 'Issue'],
  ['Certificates', 'Revoke'],
  ['Certificates', 'GetCertificate'],
  ['Certificates', 'ListCertificates'],
  ['Certificates', 'GetCrl'],
  ['Administration', 'CreateJoinToken'],
  ['Administration', 'QueryAudit'],
  ['Tokens', 'IssueToken'],
  ['Tokens', 'GetJwks'],
  ['Rotation', 'ForceRotate'],
  ['Rotation', 'GetRotation'],
];

// ---- field values ------------------------------------------------------------------------

const anyText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ minLength: 2000, maxLength: 70_000 }),
);
const uint32ish = fc.oneof(
  fc.constantFrom(0, 1, 59, 60, 600, 3600, 14_400, 14_401, 86_400, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1),
  fc.nat({ max: 2 ** 32 - 1 }),
  fc.integer({ min: -(2 ** 31), max: -1 }),
  fc.constantFrom(2 ** 32, 2 ** 40, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER),
);
const int64ish = fc.oneof(fc.constantFrom(0, -1, 1, 2 ** 31, -(2 ** 53 - 1), 2 ** 53 - 1), fc.integer(), fc.maxSafeInteger());
const spiffeIdText = fc.oneof(
  fc.constantFrom(OPERATOR, IMPORT, BLUR, `spiffe://${TRUST_DOMAIN}/unknown/stage`, `spiffe://other.test/pipeline/import`, `${IMPORT}/`, `${IMPORT}?q`, `SPIFFE://${TRUST_DOMAIN}/pipeline/import`, ''),
  fc.stringMatching(/^spiffe:\/\/e2e\.test(\/[a-z*.%]{0,8}){0,4}$/),
  anyText,
);
const serialText = fc.oneof(fc.stringMatching(/^[0-9a-fA-F:]{0,50}$/), anyText, fc.constantFrom('', '00', '0'.repeat(40), 'f'.repeat(41)));
const reasonValue = fc.oneof(
  fc.constantFrom('REVOCATION_REASON_UNSPECIFIED', 'REVOCATION_REASON_KEY_COMPROMISE', 'REVOCATION_REASON_SUPERSEDED', 'REVOCATION_REASON_PRIVILEGE_WITHDRAWN'),
  fc.constantFrom(0, 1, 6, 7, 8, 9, 10, 99, 2 ** 31 - 1, -1),
);
const selectorText = fc.oneof(
  fc.constantFrom(`spiffe://${TRUST_DOMAIN}/fuzz/**`, `spiffe://${TRUST_DOMAIN}/fuzz/*`, `spiffe://other.test/**`, '**', '*', `spiffe://${TRUST_DOMAIN}/fuzz/a/**/b`),
  fc.stringMatching(/^spiffe:\/\/e2e\.test\/fuzz(\/[a-z*]{0,4}){0,3}$/),
  anyText,
);

/** Protobuf varint of a non-negative bigint (any length, as given). */
function varint(value: bigint): Buffer {
  const bytes: number[] = [];
  let v = value;
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    bytes.push(byte);
  } while (v > 0n);
  return Buffer.from(bytes);
}

/** One raw protobuf field (possibly malformed). */
const rawField: fc.Arbitrary<Buffer> = fc.oneof(
  // varint fields, incl. 10-byte (negative int64) and 11-byte (past 64 bits) values, unknown enums
  fc
    .tuple(fc.integer({ min: 1, max: 20 }), fc.oneof(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.bigInt({ min: 1n << 64n, max: 1n << 76n }), fc.constantFrom(0n, 99n, 4294967295n, 4294967296n, (1n << 63n) + 5n)))
    .map(([field, value]) => Buffer.concat([varint(BigInt(field << 3)), varint(value)])),
  // length-delimited fields: text, bytes, a CSR-sized blob; sometimes the length lies
  fc
    .tuple(fc.integer({ min: 1, max: 20 }), fc.uint8Array({ maxLength: 300 }), fc.oneof(fc.constant(0), fc.integer({ min: -5, max: 50 })))
    .map(([field, payload, lie]) => Buffer.concat([varint(BigInt((field << 3) | 2)), varint(BigInt(Math.max(0, payload.length + lie))), payload])),
  // fixed32 / fixed64 / start-group / end-group / invalid wire types 6 and 7
  fc.tuple(fc.integer({ min: 1, max: 20 }), fc.constantFrom(1, 3, 4, 5, 6, 7), fc.uint8Array({ minLength: 0, maxLength: 8 })).map(([field, wire, payload]) => Buffer.concat([varint(BigInt((field << 3) | wire)), payload])),
  // field number 0 and field numbers past 2^29
  fc.tuple(fc.constantFrom(0n, 1n << 29n, (1n << 32n) - 1n), fc.uint8Array({ maxLength: 4 })).map(([key, payload]) => Buffer.concat([varint(key << 3n), payload])),
);
const rawMessage: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 6, arbitrary: fc.array(rawField, { maxLength: 6 }).map((fields) => Buffer.concat(fields)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)) },
);

// ---- the target --------------------------------------------------------------------------

/**
 * Runs `runs` calls against `e2e` (start it with a large enrollBurst) and returns the counts.
 * The broker must be fresh or at least have its operator and service enrolled by this call.
 */
export async function fuzzRpcTarget(e2e: E2eBroker, runs: number, options: RpcFuzzOptions): Promise<FuzzReport> {
  const seed = options.seed ?? Math.floor(Math.random() * 0x7fffffff);
  const report = new FuzzReport(`rpc-${options.mode} (mTLS, seed ${seed})`);
  const started = Date.now();
  const db = new Database(join(e2e.dir, 'broker.db'), { readonly: true, fileMustExist: true });
  const counts = (): StoreCounts => {
    const one = (sql: string): number => (db.prepare(sql).pluck().get() as number | null) ?? 0;
    return {
      certificates: one('SELECT count(*) FROM certificates'),
      joinTokens: one('SELECT count(*) FROM join_tokens'),
      usedJoinTokens: one('SELECT count(*) FROM join_tokens WHERE used_at IS NOT NULL'),
      revoked: one('SELECT count(*) FROM certificates WHERE revoked_at IS NOT NULL'),
      rotations: one('SELECT count(*) FROM rotations'),
      auditSeq: one('SELECT max(seq) FROM audit_entries'),
    };
  };
  const auditOutcomesAfter = (seq: number): string[] => (db.prepare('SELECT outcome FROM audit_entries WHERE seq > ? ORDER BY seq').pluck().all(seq) as string[]);
  const serialExists = (serial: string): boolean => db.prepare('SELECT 1 FROM certificates WHERE serial = ?').get(serial.trim().toLowerCase().replace(/:/g, '')) !== undefined;

  const operator: ClientIdentity = await e2e.enroll(await e2e.bootstrapToken(OPERATOR));
  const service: ClientIdentity = await e2e.enroll(await e2e.bootstrapToken(IMPORT));
  const clients: Readonly<Record<Caller, BrokerClients>> = { operator: e2e.as(operator), service: e2e.as(service), anonymous: e2e.anonymous() };
  const rawClients: Record<Caller, grpc.Client> = {
    operator: rawClient(e2e, operator),
    service: rawClient(e2e, service),
    anonymous: rawClient(e2e, null),
  };
  // Valid CSRs (fresh keys) and invalid ones; join tokens, some redeemable.
  const goodCsrs: Buffer[] = [];
  for (let i = 0; i < 8; i++) goodCsrs.push(Buffer.from((await newKeyAndCsr()).csrDer));
  const badCsrs: Buffer[] = [
    Buffer.alloc(0),
    Buffer.from('not a csr'),
    buildCsr(generateKeyPairSync('ec', { namedCurve: 'prime192v1' }).privateKey),
    Buffer.concat([goodCsrs[0]!.subarray(0, 40)]),
    // A CSR over the key the service already holds (Renew refuses it).
    buildCsr(createPrivateKey(service.keyPem)),
  ];
  const joinTokens: string[] = [];
  for (let i = 0; i < 4; i++) joinTokens.push(await e2e.bootstrapToken(i % 2 === 0 ? BLUR : IMPORT));
  const knownSerials: string[] = [];
  const rotationIds: string[] = [];

  const csrValue = fc.oneof(
    { weight: 3, arbitrary: fc.nat({ max: goodCsrs.length - 1 }).map((i) => goodCsrs[i]!) },
    { weight: 2, arbitrary: fc.nat({ max: badCsrs.length - 1 }).map((i) => badCsrs[i]!) },
    { weight: 1, arbitrary: fc.tuple(fc.nat({ max: goodCsrs.length - 1 }), fc.nat(), fc.nat({ max: 7 })).map(([i, at, bit]) => {
      const csr = Buffer.from(goodCsrs[i]!);
      csr[at % csr.length] = (csr[at % csr.length] ?? 0) ^ (1 << bit);
      return csr;
    }) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 400 }).map((bytes) => Buffer.from(bytes)) },
  );
  const joinTokenValue = fc.oneof(
    fc.nat({ max: 1000 }).map((i) => joinTokens[i % Math.max(joinTokens.length, 1)] ?? ''),
    fc.constantFrom(`cbjt1-${'0'.repeat(32)}-${'A'.repeat(43)}`, 'cbjt1-', ''),
    fc.stringMatching(/^cbjt1-[0-9a-f]{32}-[A-Za-z0-9_-]{43}$/),
    anyText,
  );
  const serialValue = fc.oneof(serialText, fc.nat({ max: 1000 }).map((i) => knownSerials[i % Math.max(knownSerials.length, 1)] ?? ''));
  const scopeList = fc.array(fc.oneof(fc.constantFrom('media.source.write', 'media.source.read', 'media.anonymized.write', '*', ''), anyText), { maxLength: 6 });
  const audience = fc.oneof(fc.constantFrom('storage.source', 'storage.anonymized', 'storage.other', '', '*'), anyText);
  const callerValue = fc.constantFrom<Caller>('operator', 'operator', 'service', 'anonymous');

  const requestOf = (method: string): fc.Arbitrary<Record<string, unknown>> => {
    switch (method) {
      case 'Enroll':
        return fc.record({ joinToken: joinTokenValue, csr: csrValue, ttlSeconds: uint32ish });
      case 'Renew':
        return fc.record({ csr: csrValue, ttlSeconds: uint32ish });
      case 'Issue':
        return fc.record({ csr: csrValue, spiffeId: spiffeIdText, ttlSeconds: uint32ish });
      case 'Revoke':
        return fc.record({ serial: serialValue, reason: reasonValue });
      case 'GetCertificate':
        return fc.record({ serial: serialValue });
      case 'ListCertificates':
        return fc.record({ spiffeId: spiffeIdText, profile: fc.oneof(fc.constantFrom('', 'service', 'operator', 'server'), anyText), validOnly: fc.boolean(), pageSize: uint32ish, pageToken: anyText });
      case 'CreateJoinToken':
        return fc.record({ spiffeId: spiffeIdText, ttlSeconds: uint32ish });
      case 'QueryAudit':
        return fc.record({ actor: fc.oneof(spiffeIdText, anyText), action: fc.oneof(fc.constantFrom('Enroll', 'Renew', ''), anyText), outcome: fc.oneof(fc.constantFrom('allowed', 'denied', 'failed', ''), anyText), subject: anyText, sinceUnix: int64ish, untilUnix: int64ish, pageSize: uint32ish, pageToken: anyText });
      case 'IssueToken':
        return fc.record({ audience, scopes: scopeList, ttlSeconds: uint32ish, bindToCertificate: fc.boolean() });
      case 'ForceRotate':
        return fc.record({ selector: selectorText, all: fc.constant(false), reason: reasonValue });
      case 'GetRotation':
        return fc.record({ rotationId: fc.oneof(anyText, fc.nat({ max: 100 }).map((i) => rotationIds[i % Math.max(rotationIds.length, 1)] ?? '')) });
      default:
        return fc.constant({});
    }
  };
  const caseArbitrary: fc.Arbitrary<RpcCase> = fc.tuple(fc.nat({ max: METHODS.length - 1 }), callerValue).chain(([index, caller]) => {
    const [service, method] = METHODS[index]!;
    if (options.mode === 'raw') return rawMessage.map((request): RpcCase => ({ service, method, caller, request }));
    return requestOf(method).map((request): RpcCase => ({ service, method, caller, request }));
  });

  /** The oracle of property 3: why an accepted call should not have been, or null. */
  const acceptanceProblem = (call: RpcCase, revokedSerialExisted: boolean | null): string | null => {
    if (Buffer.isBuffer(call.request)) return null;
    const r = call.request;
    if (['Enroll', 'Renew', 'Issue'].includes(call.method)) {
      const problem = csrProblem(Buffer.isBuffer(r.csr) ? r.csr : Buffer.alloc(0));
      if (problem !== null) return `CSR accepted: ${problem}`;
    }
    if (call.method === 'Issue' && call.caller !== 'operator') return 'Issue by a non-operator';
    if (call.method === 'CreateJoinToken' && (call.caller !== 'operator' || !POLICY_IDENTITIES.has(String(r.spiffeId)))) return `join token for ${String(r.spiffeId)} by ${call.caller}`;
    if (call.method === 'IssueToken') {
      const allowed = call.caller === 'service' ? TOKEN_POLICY[IMPORT] : undefined;
      if (allowed === undefined) return `token for ${call.caller}`;
      if (!allowed.audiences.includes(String(r.audience))) return `token audience ${String(r.audience)}`;
      const scopes = Array.isArray(r.scopes) ? (r.scopes as unknown[]) : [];
      if (!scopes.every((scope) => allowed.scopes.includes(String(scope)))) return `token scopes ${JSON.stringify(scopes)}`;
    }
    if (call.method === 'Revoke' && revokedSerialExisted === false) return `revoked a serial that did not exist (${String(r.serial)})`;
    return null;
  };

  let broken = false;
  const property = fc.asyncProperty(caseArbitrary, async (call) => {
    if (broken) return true;
    report.cases++;
    const before = counts();
    const serialExisted = call.method === 'Revoke' && !Buffer.isBuffer(call.request) ? serialExists(String(call.request.serial)) : null;
    const caseStarted = performance.now();
    let code: grpc.status = grpc.status.OK;
    let details = '';
    let reply: unknown = null;
    try {
      reply = Buffer.isBuffer(call.request)
        ? await rawUnary(rawClients[call.caller], `/credbroker.v1.${call.service}/${call.method}`, call.request)
        : await unary(clients[call.caller][serviceKey(call.service)], call.method, call.request, CALL_DEADLINE_MS);
    } catch (error) {
      const serviceError = error as grpc.ServiceError;
      code = typeof serviceError.code === 'number' ? serviceError.code : grpc.status.UNKNOWN;
      details = typeof serviceError.details === 'string' ? serviceError.details : String(error);
    }
    report.maxMs = Math.max(report.maxMs, performance.now() - caseStarted);
    const after = counts();
    const what = `${call.caller} ${call.method} ${Buffer.isBuffer(call.request) ? call.request.toString('hex') : JSON.stringify(Object.fromEntries(Object.entries(call.request).map(([k, v]) => [k, typeof v === 'string' && v.length > 200 ? `${v.slice(0, 200)}…(${v.length})` : Buffer.isBuffer(v) ? `hex:${v.toString('hex').slice(0, 400)}` : v])))}`;
    const longest = Buffer.isBuffer(call.request) ? 0 : Math.max(0, ...Object.values(call.request).map((v) => (typeof v === 'string' ? v.length : 0)));
    if (Buffer.isBuffer(call.request) && !decodes(call, call.request) && code !== grpc.status.INVALID_ARGUMENT && code !== grpc.status.UNAUTHENTICATED) {
      report.crash(`an undecodable message got ${statusName(code)} (${details}), expected INVALID_ARGUMENT (or UNAUTHENTICATED first): ${what}`);
      return true;
    }
    if (!DOCUMENTED_STATUSES.has(code)) {
      report.crash(`status ${statusName(code)} (${details}) for ${what}`);
      if (code === grpc.status.DEADLINE_EXCEEDED || code === grpc.status.UNAVAILABLE) broken = true;
      return true;
    }
    if (code !== grpc.status.OK) {
      report.refuse(statusName(code));
      const outcomes = auditOutcomesAfter(before.auditSeq);
      const wrote = after.certificates !== before.certificates || after.joinTokens !== before.joinTokens || after.usedJoinTokens !== before.usedJoinTokens || after.revoked !== before.revoked || after.rotations !== before.rotations;
      // Every refusal is audited (long caller text is cut, undecodable messages are refused by the handler).
      if (outcomes.length === 0) report.crash(`refused (${statusName(code)}) without an audit entry${longest > MAX_AUDIT_STRING_LENGTH ? ' (string field over 2,048 characters)' : ''}: ${what}`);
      if (wrote) report.crash(`refused (${statusName(code)}) but wrote: ${JSON.stringify({ before, after })} for ${what}`);
      else if (outcomes.length > 1 || outcomes.some((outcome) => outcome !== 'denied')) report.crash(`refused (${statusName(code)}) with audit ${JSON.stringify(outcomes)} for ${what}`);
      return true;
    }
    report.accepted++;
    const problem = acceptanceProblem(call, serialExisted);
    if (problem !== null) report.badAcceptance(`${problem}: ${what}`);
    // Remember what later calls can use.
    if (!Buffer.isBuffer(call.request) && reply !== null && typeof reply === 'object') {
      const fields = reply as Record<string, unknown>;
      if (typeof fields.serial === 'string' && fields.serial !== '' && ['Enroll', 'Issue', 'Renew'].includes(call.method)) knownSerials.push(fields.serial);
      if (typeof fields.joinToken === 'string') joinTokens.push(fields.joinToken);
      if (typeof fields.rotationId === 'string' && fields.rotationId !== '') rotationIds.push(fields.rotationId);
    }
    if (report.cases % 100 === 0) await expectAnswering(report, clients.anonymous);
    return true;
  });
  try {
    await fc.assert(property, { numRuns: runs, seed });
    await expectAnswering(report, clients.anonymous);
  } finally {
    for (const client of Object.values(rawClients)) client.close();
    db.close();
  }
  report.elapsedMs = Date.now() - started;
  return report;
}

function serviceKey(service: RpcCase['service']): Exclude<keyof BrokerClients, 'close'> {
  return ({ Enrollment: 'enrollment', Certificates: 'certificates', Administration: 'administration', Tokens: 'tokens', Rotation: 'rotation' } as const)[service];
}

/** The name of a status code, or its number if it has none. */
function statusName(code: number): string {
  return (grpc.status as unknown as Record<number, string | undefined>)[code] ?? String(code);
}

/** Whether the server's own deserializer (proto-loader, as the broker loads it) reads `bytes`. */
function decodes(call: RpcCase, bytes: Buffer): boolean {
  const method = (API.definition[`credbroker.v1.${call.service}`] as Record<string, { requestDeserialize(b: Buffer): unknown }> | undefined)?.[call.method];
  if (method === undefined) return false;
  try {
    method.requestDeserialize(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Property 4: GetTrustBundle answers. */
async function expectAnswering(report: FuzzReport, anonymous: BrokerClients): Promise<void> {
  try {
    const bundle = await unary<{ trustDomain: string }>(anonymous.enrollment, 'GetTrustBundle', {}, CALL_DEADLINE_MS);
    if (bundle.trustDomain !== TRUST_DOMAIN) report.crash(`GetTrustBundle answered ${JSON.stringify(bundle)}`);
  } catch (error) {
    report.crash(`the broker stopped answering: ${String(error)}`);
  }
}

/** A generic client sending bytes as they are (mutual TLS when `identity` is given). */
function rawClient(e2e: E2eBroker, identity: ClientIdentity | null): grpc.Client {
  const credentials =
    identity === null
      ? grpc.credentials.createSsl(Buffer.from(e2e.rootPem))
      : grpc.credentials.createSsl(Buffer.from(e2e.rootPem), Buffer.from(identity.keyPem), Buffer.from(identity.certificatePem + identity.chainPem));
  return new grpc.Client(e2e.address, credentials, { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' });
}

function rawUnary(client: grpc.Client, path: string, request: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      path,
      (bytes: Buffer) => bytes,
      (bytes: Buffer) => bytes,
      request,
      new grpc.Metadata(),
      { deadline: Date.now() + CALL_DEADLINE_MS },
      (error: grpc.ServiceError | null, value?: Buffer) => {
        if (error !== null) reject(error);
        else resolve(value ?? Buffer.alloc(0));
      },
    );
  });
}
