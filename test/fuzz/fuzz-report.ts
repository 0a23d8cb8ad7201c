/**
 * What one fuzzing target saw: cases, acceptances, refusals by status or error code, and the
 * two counts that must stay zero (accepted-but-invalid and crashes), with the first few
 * counterexamples of each so a failure can be replayed.
 */

/** Counterexamples kept per kind of violation. */
const MAX_EXAMPLES = 5;

/** Counts of one fuzzing target; the test and `npm run fuzz` print and check it. */
export class FuzzReport {
  readonly target: string;
  cases = 0;
  accepted = 0;
  /** Refusals by gRPC status name or BrokerError code. */
  readonly refused: Record<string, number> = {};
  /** Accepted although the input is not valid (must stay 0). */
  acceptedInvalid = 0;
  /** Wrong error type, undocumented status, hang, broker stopped answering, write on refusal (must stay 0). */
  crashes = 0;
  readonly examples: string[] = [];
  /**
   * Known defects seen (counted, not crashes, because they are reported and not fixed here),
   * and observations worth a number; by label.
   */
  readonly known: Record<string, number> = {};
  /** One example per known label. */
  readonly knownExamples: Record<string, string> = {};
  /** Slowest case, in ms. */
  maxMs = 0;
  /** Wall time of the run, in ms. */
  elapsedMs = 0;

  constructor(target: string) {
    this.target = target;
  }

  refuse(key: string): void {
    this.refused[key] = (this.refused[key] ?? 0) + 1;
  }

  /** Records an input accepted although invalid. */
  badAcceptance(example: string): void {
    this.acceptedInvalid++;
    this.#keep(`accepted-but-invalid: ${example}`);
  }

  /** Records a known defect or an observation under `label`. */
  note(label: string, example: string): void {
    this.known[label] = (this.known[label] ?? 0) + 1;
    this.knownExamples[label] ??= example.length > 600 ? `${example.slice(0, 600)}…` : example;
  }

  /** Records a crash: a property other than acceptance broken. */
  crash(example: string): void {
    this.crashes++;
    this.#keep(`crash: ${example}`);
  }

  #keep(example: string): void {
    if (this.examples.length < MAX_EXAMPLES) this.examples.push(example.length > 4000 ? `${example.slice(0, 4000)}…` : example);
  }

  /** True when both must-be-zero counts are zero. */
  get clean(): boolean {
    return this.acceptedInvalid === 0 && this.crashes === 0;
  }

  /** A few lines for a person: counts, refusals sorted by frequency, time. */
  format(): string {
    const refusals = Object.entries(this.refused)
      .sort((a, b) => b[1] - a[1])
      .map(([key, count]) => `    ${key}: ${count}`);
    return [
      `${this.target}:`,
      `  cases: ${this.cases}`,
      `  accepted: ${this.accepted}`,
      `  refused: ${Object.values(this.refused).reduce((sum, count) => sum + count, 0)}`,
      ...refusals,
      `  accepted-but-invalid: ${this.acceptedInvalid}`,
      `  crashes: ${this.crashes}`,
      ...Object.entries(this.known).map(([label, count]) => `  known/observed: ${label}: ${count} (e.g. ${this.knownExamples[label] ?? ''})`),
      `  slowest case: ${this.maxMs.toFixed(1)} ms`,
      `  time: ${(this.elapsedMs / 1000).toFixed(1)} s`,
      ...this.examples.map((example) => `  ! ${example}`),
    ].join('\n');
  }
}

/** Resolves with `promise`, or rejects with `timed out after ms` (the timer never keeps the process alive). */
export async function withinMs<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`timed out after ${ms} ms`));
    }, ms);
    timer.unref();
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
