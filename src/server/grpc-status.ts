/**
 * The one table from BrokerError kinds to gRPC status codes (STYLE.md "Errors"), and the
 * conversion of any failure into what a caller may see: the public message (what was wrong
 * with *their* input) and the request id. Internal text, stack traces and HSM details stay in
 * the log.
 */
import * as grpc from '@grpc/grpc-js';
import { BrokerError, toBrokerError, type ErrorKind } from '../core/index.js';

/** The status each kind of failure gets. */
export const STATUS_OF_KIND: Readonly<Record<ErrorKind, grpc.status>> = Object.freeze({
  invalid: grpc.status.INVALID_ARGUMENT,
  unauthenticated: grpc.status.UNAUTHENTICATED,
  denied: grpc.status.PERMISSION_DENIED,
  not_found: grpc.status.NOT_FOUND,
  conflict: grpc.status.FAILED_PRECONDITION,
  exhausted: grpc.status.RESOURCE_EXHAUSTED,
  unavailable: grpc.status.UNAVAILABLE,
  internal: grpc.status.INTERNAL,
});

/** Metadata key carrying the request id in every reply (success or failure). */
export const REQUEST_ID_HEADER = 'x-request-id';

/** A gRPC error for `error`: status from the table, public message and request id only. */
export function toServiceError(error: unknown, requestId: string): Partial<grpc.StatusObject> & { code: grpc.status; details: string } {
  const broker: BrokerError = toBrokerError(error);
  const metadata = new grpc.Metadata();
  metadata.set(REQUEST_ID_HEADER, requestId);
  metadata.set('x-error-code', broker.code);
  return {
    code: STATUS_OF_KIND[broker.kind],
    details: `${broker.publicMessage} (request id ${requestId})`,
    metadata,
  };
}
