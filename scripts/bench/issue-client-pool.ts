/**
 * The issue benchmark's client processes, seen from the parent: forks `issue-client.ts` K times
 * (inheriting the tsx loader from this process's execArgv), sends each a command and waits for
 * its one reply with a timeout, and ends them on close — politely, then by their own handle.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Command, Reply } from './issue-protocol.js';

const CLIENT_SCRIPT = fileURLToPath(new URL('./issue-client.ts', import.meta.url));
/** How long a fresh process may take to load its modules. */
const START_TIMEOUT_MS = 60_000;
/** How long an exiting process may take before it is killed. */
const EXIT_GRACE_MS = 2_000;

interface Waiter {
  resolve(reply: Reply): void;
  reject(error: Error): void;
}

/** One forked client process. */
class ClientProcess {
  readonly index: number;
  readonly #child: ChildProcess;
  readonly #waiters: Waiter[] = [];
  readonly #exit: Promise<void>;
  #exited: string | null = null;

  constructor(index: number) {
    this.index = index;
    this.#child = fork(CLIENT_SCRIPT, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.#child.on('message', (reply: Reply) => {
      this.#waiters.shift()?.resolve(reply);
    });
    this.#child.on('error', (error) => {
      for (const waiter of this.#waiters.splice(0)) waiter.reject(new Error(`client process ${index}: ${error.message}`));
    });
    this.#exit = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        const exited = `client process ${index} exited (${signal ?? `code ${code ?? '?'}`})`;
        this.#exited = exited;
        for (const waiter of this.#waiters.splice(0)) waiter.reject(new Error(exited));
        resolve();
      });
    });
  }

  /** The next reply (the first is `ready`), or an Error after `timeoutMs` or if the process dies. */
  next(what: string, timeoutMs: number): Promise<Reply> {
    if (this.#exited !== null) return Promise.reject(new Error(this.#exited));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        const at = this.#waiters.indexOf(waiter);
        if (at >= 0) this.#waiters.splice(at, 1);
        reject(new Error(`client process ${this.index} did not answer "${what}" within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  ask(command: Command, timeoutMs: number): Promise<Reply> {
    const reply = this.next(command.type, timeoutMs);
    this.#child.send(command);
    return reply;
  }

  async close(): Promise<void> {
    if (this.#exited !== null) return;
    if (this.#child.connected) this.#child.send({ type: 'exit' } satisfies Command);
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), EXIT_GRACE_MS);
    await this.#exit;
    clearTimeout(timer);
  }
}

/** K client processes driven together. */
export class ClientPool {
  readonly #clients: readonly ClientProcess[];

  private constructor(clients: readonly ClientProcess[]) {
    this.#clients = clients;
  }

  get size(): number {
    return this.#clients.length;
  }

  /** Forks `count` client processes and waits until each listens. */
  static async start(count: number): Promise<ClientPool> {
    const pool = new ClientPool(Array.from({ length: count }, (_, index) => new ClientProcess(index)));
    try {
      await Promise.all(
        pool.#clients.map(async (client) => {
          const reply = await client.next('ready', START_TIMEOUT_MS);
          if (reply.type !== 'ready') throw new Error(`client process ${client.index}: expected ready, got ${reply.type}`);
        }),
      );
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  /**
   * Sends each process its command (`command(index)`) and waits for every reply of the expected
   * type. @throws Error naming the process and its failure
   */
  async all<T extends Reply['type']>(expected: T, command: (index: number) => Command, timeoutMs: number): Promise<Extract<Reply, { type: T }>[]> {
    return Promise.all(
      this.#clients.map(async (client) => {
        const reply = await client.ask(command(client.index), timeoutMs);
        if (reply.type === 'failed') throw new Error(`client process ${client.index}: ${reply.message}`);
        if (reply.type !== expected) throw new Error(`client process ${client.index}: expected ${expected}, got ${reply.type}`);
        return reply as Extract<Reply, { type: T }>;
      }),
    );
  }

  /** Ends every process (exit command, then SIGKILL after a grace period). */
  async close(): Promise<void> {
    await Promise.all(this.#clients.map((client) => client.close()));
  }
}
