/**
 * The e2e check of a refusal: the exact status, a request id in the reply, nothing written but
 * one audit entry, and that entry is the denial with its reason.
 */
import { expect } from 'chai';
import type * as grpc from '@grpc/grpc-js';
import type { AuditEntry } from '../../src/store/index.js';
import { grpcError, type E2eBroker } from './harness.js';

/** What the store holds, to prove a refusal wrote nothing but its audit entry. */
export async function snapshot(e2e: E2eBroker): Promise<{ certificates: number; lastAudit: AuditEntry | null }> {
  return e2e.broker.store.transaction(async (tx) => ({
    certificates: (await tx.listCertificates({}, 1000, '')).items.length,
    lastAudit: await tx.lastAuditEntry(),
  }));
}

/** Asserts: the status, nothing but one audit entry written, and that entry is the denial. */
export async function expectRefused(e2e: E2eBroker, call: () => Promise<unknown>, status: grpc.status, action: string, reason: RegExp | string): Promise<grpc.ServiceError> {
  const before = await snapshot(e2e);
  const error = await grpcError(call());
  expect(error.code, error.details).to.equal(status);
  expect(error.details).to.match(/request id [0-9a-f-]{36}/);
  const after = await snapshot(e2e);
  expect(after.certificates, 'no certificate written').to.equal(before.certificates);
  const entry = after.lastAudit;
  expect(entry?.seq, 'exactly one audit entry added').to.equal((before.lastAudit?.seq ?? 0) + 1);
  expect(entry?.action).to.equal(action);
  expect(entry?.outcome).to.equal('denied');
  if (typeof reason === 'string') expect(entry?.reason).to.equal(reason);
  else expect(entry?.reason).to.match(reason);
  return error;
}
