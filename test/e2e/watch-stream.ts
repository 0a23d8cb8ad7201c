/**
 * A Watch stream as tests use it: events arrive in a queue that `next()` awaits (no sleeps), and
 * `ended` settles with the stream's final status.
 */
import type * as grpc from '@grpc/grpc-js';
import type { BrokerClients } from '../../src/agent/index.js';

/** A WatchEvent as proto-loader decodes it. */
export interface WatchEvent {
  readonly kind: string;
  readonly rotationId: string;
  readonly serial: string;
  readonly reason: string;
  readonly timeUnixMs: number;
}

/** An open Watch stream. */
export interface WatchStream {
  /** The next event (waits for it); rejects if the stream ends first. */
  next(): Promise<WatchEvent>;
  /** The stream's end: its status code (OK = 0 when the broker ended it cleanly). */
  readonly ended: Promise<{ code: number; details: string }>;
  cancel(): void;
}

/** Opens Rotation/Watch with the clients' identity. */
export function openWatch(clients: BrokerClients): WatchStream {
  const call = (clients.rotation as unknown as { Watch(request: object): grpc.ClientReadableStream<WatchEvent> }).Watch({});
  const queue: WatchEvent[] = [];
  const waiters: { resolve: (event: WatchEvent) => void; reject: (error: Error) => void }[] = [];
  let final: { code: number; details: string } | null = null;
  let settleEnded: (value: { code: number; details: string }) => void = () => undefined;
  const ended = new Promise<{ code: number; details: string }>((resolve) => {
    settleEnded = resolve;
  });
  const finish = (status: { code: number; details: string }): void => {
    if (final !== null) return;
    final = status;
    settleEnded(status);
    for (const waiter of waiters.splice(0)) waiter.reject(new Error(`the Watch stream ended (status ${status.code}: ${status.details}) before the next event`));
  };
  call.on('data', (event: WatchEvent) => {
    const waiter = waiters.shift();
    if (waiter === undefined) queue.push(event);
    else waiter.resolve(event);
  });
  call.on('status', (status: grpc.StatusObject) => {
    finish({ code: status.code, details: status.details });
  });
  call.on('error', (error: grpc.ServiceError) => {
    finish({ code: error.code, details: error.details });
  });
  return {
    next: () => {
      const queued = queue.shift();
      if (queued !== undefined) return Promise.resolve(queued);
      if (final !== null) return Promise.reject(new Error(`the Watch stream ended (status ${final.code}: ${final.details})`));
      return new Promise((resolve, reject) => waiters.push({ resolve, reject }));
    },
    ended,
    cancel: () => {
      call.cancel();
    },
  };
}
