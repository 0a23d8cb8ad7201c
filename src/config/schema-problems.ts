/**
 * Zod issues as {@link ConfigProblem}s that an operator can act on: the dotted path of the
 * field, the expected form and what was found (`hsm.sessions: expected an integer >= 1, got 0`),
 * unknown keys named one by one with the keys allowed there.
 */
import type { z } from 'zod';
import type { ConfigProblem } from './config-error.js';

type RawIssue = z.core.$ZodRawIssue;

/**
 * The error map passed to `safeParse` for configuration: turns every issue zod raises into a
 * message in the words of the config file (mapping, list, integer). Messages set by a schema
 * itself (e.g. the secret-source explanations) take precedence over this map.
 */
export function configErrorMap(issue: RawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type': {
      const expected = describeExpected(issue.expected, issue);
      if (issue.input === undefined) return `missing: expected ${expected}`;
      return `expected ${expected}, got ${describeValue(issue.input)}`;
    }
    case 'too_small':
    case 'too_big':
      return describeBound(issue);
    case 'invalid_value': {
      const allowed = issue.values.map((v) => describeValue(v));
      const expected = allowed.length === 1 ? allowed.join('') : `one of ${allowed.join(', ')}`;
      return `expected ${expected}, got ${describeValue(issue.input)}`;
    }
    case 'invalid_format': {
      const expected =
        issue.format === 'regex' && issue.pattern !== undefined
          ? `a string matching ${issue.pattern}`
          : `a valid ${issue.format}`;
      return `expected ${expected}, got ${describeValue(issue.input)}`;
    }
    case 'not_multiple_of':
      return `expected a multiple of ${String(issue.divisor)}, got ${describeValue(issue.input)}`;
    case 'unrecognized_keys': {
      // The per-key problems are built in schemaProblems; this part names the keys allowed here.
      const allowed = allowedKeys(issue);
      return allowed.length === 0 ? 'no keys are allowed here' : `allowed here: ${allowed.join(', ')}`;
    }
    case 'invalid_union':
      return 'matches none of the allowed forms';
    default:
      return undefined;
  }
}

/**
 * Flattens a failed parse into problems: one per issue, and one per unknown key (so each key is
 * named with its full path, e.g. `hsm.colour`).
 */
export function schemaProblems(error: z.core.$ZodError): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const suggestion = suggestKey(key, issue.message);
        problems.push({
          path: formatConfigPath([...issue.path, key]),
          message: `unknown key "${key}"${suggestion}; ${issue.message}`,
        });
      }
    } else {
      problems.push({ path: formatConfigPath(issue.path), message: issue.message });
    }
  }
  return problems;
}

/**
 * Formats a zod path as the dotted path people write: `hsm.pin.fd`, `entries[2].name`,
 * `labels["a.b"]`. The empty path (the whole document) is `''`.
 */
export function formatConfigPath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${String(segment)}]`;
    else if (typeof segment === 'symbol') text += `[${String(segment)}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(segment)) text += text === '' ? segment : `.${segment}`;
    else text += `[${JSON.stringify(segment)}]`;
  }
  return text;
}

/** A short, safe description of a found value: numbers as is, strings quoted and cut at 40 chars. */
function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value);
    case 'object':
      return 'a mapping';
    default:
      return `a ${typeof value}`;
  }
}

function describeExpected(expected: string, issue: RawIssue): string {
  if (isIntegerSchema(issue)) return 'an integer';
  switch (expected) {
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'int':
    case 'bigint':
      return 'an integer';
    case 'boolean':
      return 'true or false';
    case 'object':
    case 'record':
    case 'map':
      return 'a mapping';
    case 'array':
    case 'tuple':
    case 'set':
      return 'a list';
    case 'null':
      return 'null';
    default:
      return expected;
  }
}

function describeBound(issue: Extract<RawIssue, { code: 'too_small' | 'too_big' }>): string {
  const small = issue.code === 'too_small';
  const limit = small ? issue.minimum : issue.maximum;
  const input = issue.input;
  switch (issue.origin) {
    case 'number':
    case 'int':
    case 'bigint': {
      const what = issue.origin === 'number' && !isIntegerSchema(issue) ? 'a number' : 'an integer';
      const op = small ? (issue.inclusive === false ? '>' : '>=') : issue.inclusive === false ? '<' : '<=';
      return `expected ${what} ${op} ${String(limit)}, got ${describeValue(input)}`;
    }
    case 'string':
    case 'array':
    case 'set': {
      const unit = issue.origin === 'string' ? 'character' : 'item';
      const size =
        typeof input === 'string' || Array.isArray(input) ? input.length : input instanceof Set ? input.size : undefined;
      const quantity = issue.exact === true ? 'exactly' : small ? 'at least' : 'at most';
      const plural = Number(limit) === 1 ? '' : 's';
      const got = size === undefined ? '' : `, got ${String(size)}`;
      return `expected ${quantity} ${String(limit)} ${unit}${plural}${got}`;
    }
    default:
      return `expected a value ${small ? '>=' : '<='} ${String(limit)}, got ${describeValue(input)}`;
  }
}

function isIntegerSchema(issue: RawIssue): boolean {
  const def: unknown = issue.schema?._zod.def;
  return typeof def === 'object' && def !== null && 'format' in def && /int/.test(String(def.format));
}

function allowedKeys(issue: RawIssue): string[] {
  const def: unknown = issue.inst?._zod.def;
  if (typeof def !== 'object' || def === null || !('shape' in def)) return [];
  const shape = def.shape;
  return typeof shape === 'object' && shape !== null ? Object.keys(shape) : [];
}

/** ` (did you mean "signMode"?)` for a near miss such as `signmode` or `sign_mode`, else ''. */
function suggestKey(key: string, allowedMessage: string): string {
  const allowed = /^allowed here: (.*)$/.exec(allowedMessage)?.[1]?.split(', ') ?? [];
  const squash = (s: string): string => s.toLowerCase().replace(/[-_]/g, '');
  // Short keys get no edit-distance guess: `x` is not a typo of `fd`.
  const maxEdits = key.length < 4 ? 0 : key.length < 8 ? 1 : 2;
  const best =
    allowed.find((a) => squash(a) === squash(key)) ?? allowed.find((a) => editDistance(a, key) <= maxEdits);
  return best === undefined ? '' : ` (did you mean "${best}"?)`;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
