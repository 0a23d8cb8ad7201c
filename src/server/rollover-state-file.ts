/**
 * The broker's record of key roll-overs: when each intermediate was activated and deactivated,
 * and which token-signing key signs since when. Small JSON, rewritten atomically (temporary
 * file, then rename) on every change, so a restart resumes the same lifecycle instead of
 * falling back to the intermediate the config names first. It holds no secret: certificate
 * fingerprints, key ids and instants only.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { BrokerError } from '../core/index.js';

/** What the broker remembers of one intermediate, by the SHA-256 of its certificate. */
export interface IntermediateRecord {
  /** When it started signing leaves; null while prepared. */
  activatedAt: Date | null;
  /** When a successor took over; null while prepared or active. */
  deactivatedAt: Date | null;
  /** The latest notAfter of a leaf it signed that this broker saw (a lower bound after restarts). */
  lastLeafNotAfter: Date | null;
}

/** What the broker remembers of its token-signing keys. */
export interface TokenKeyRecord {
  /** kid of the key that signs. */
  activeKid: string;
  /** When `activeKid` started signing; null for the first key. */
  switchedAt: Date | null;
  /** kid of the key it replaced (kept in the JWKS until its last token expired). */
  previousKid: string | null;
  /** kid of the next key and when it was first published. */
  nextKid: string | null;
  nextPublishedAt: Date | null;
}

/** The whole state. */
export interface RolloverState {
  intermediates: Map<string, IntermediateRecord>;
  tokenKeys: TokenKeyRecord | null;
}

/** Where the state is kept: the file, or memory only (tests). */
export interface RolloverStateStore {
  load(): RolloverState;
  save(state: RolloverState): void;
}

/** The state in memory only (unit tests). */
export class MemoryRolloverState implements RolloverStateStore {
  #saved: string | null = null;
  load(): RolloverState {
    return this.#saved === null ? { intermediates: new Map(), tokenKeys: null } : decode(this.#saved, 'memory');
  }
  save(state: RolloverState): void {
    this.#saved = encode(state);
  }
}

/** The state in a JSON file (`ca.stateFile`). */
export class RolloverStateFile implements RolloverStateStore {
  constructor(readonly path: string) {}

  /** @throws BrokerError invalid when the file exists but is not a state file */
  load(): RolloverState {
    if (!existsSync(this.path)) return { intermediates: new Map(), tokenKeys: null };
    return decode(readFileSync(this.path, 'utf8'), this.path);
  }

  save(state: RolloverState): void {
    const temporary = `${this.path}.tmp`;
    writeFileSync(temporary, encode(state), { mode: 0o644 });
    renameSync(temporary, this.path);
  }
}

const iso = (date: Date | null): string | null => (date === null ? null : date.toISOString());

function encode(state: RolloverState): string {
  const intermediates: Record<string, unknown> = {};
  for (const [sha256, record] of state.intermediates) {
    intermediates[sha256] = { activatedAt: iso(record.activatedAt), deactivatedAt: iso(record.deactivatedAt), lastLeafNotAfter: iso(record.lastLeafNotAfter) };
  }
  const keys = state.tokenKeys;
  const tokenKeys =
    keys === null
      ? null
      : { activeKid: keys.activeKid, switchedAt: iso(keys.switchedAt), previousKid: keys.previousKid, nextKid: keys.nextKid, nextPublishedAt: iso(keys.nextPublishedAt) };
  return `${JSON.stringify({ version: 1, intermediates, tokenKeys }, null, 2)}\n`;
}

function decode(text: string, source: string): RolloverState {
  const bad = (why: string): BrokerError => new BrokerError('invalid', { code: 'config.ca_state', publicMessage: `the CA state file ${source} is unusable (${why}); restore it from a backup or remove it to start over from the config` });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || (parsed as { version?: unknown }).version !== 1) throw bad('expected version 1');
  const date = (value: unknown): Date | null => {
    if (value === null || value === undefined) return null;
    const parsedDate = typeof value === 'string' ? new Date(value) : new Date(NaN);
    if (Number.isNaN(parsedDate.getTime())) throw bad(`bad instant ${typeof value === 'string' ? value.slice(0, 40) : typeof value}`);
    return parsedDate;
  };
  const text_ = (value: unknown): string | null => (typeof value === 'string' ? value : null);
  const intermediates = new Map<string, IntermediateRecord>();
  const raw = (parsed as { intermediates?: unknown }).intermediates;
  if (typeof raw === 'object' && raw !== null) {
    for (const [sha256, value] of Object.entries(raw as Record<string, Record<string, unknown>>)) {
      intermediates.set(sha256, { activatedAt: date(value.activatedAt), deactivatedAt: date(value.deactivatedAt), lastLeafNotAfter: date(value.lastLeafNotAfter) });
    }
  }
  const keys = (parsed as { tokenKeys?: Record<string, unknown> | null }).tokenKeys;
  const activeKid = keys === null || keys === undefined ? null : text_(keys.activeKid);
  return {
    intermediates,
    tokenKeys:
      keys === null || keys === undefined || activeKid === null
        ? null
        : { activeKid, switchedAt: date(keys.switchedAt), previousKid: text_(keys.previousKid), nextKid: text_(keys.nextKid), nextPublishedAt: date(keys.nextPublishedAt) },
  };
}
