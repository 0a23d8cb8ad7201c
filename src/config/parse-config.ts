/**
 * Strict configuration parsing (STYLE.md "Configuration and secrets"): YAML in, a validated and
 * deep-frozen object out, or a {@link ConfigError} that lists every problem at once.
 */
import { LineCounter, parseDocument, type YAMLError } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigProblem } from './config-error.js';
import { deepFreeze, type DeepReadonly } from './deep-freeze.js';
import { configErrorMap, schemaProblems } from './schema-problems.js';
import { resolveSecretSourcePaths } from './secret-source.js';

/** Options of {@link parseConfig}. */
export interface ParseConfigOptions {
  /**
   * Folder against which relative `file` paths of secret sources are resolved. `loadConfigFile`
   * passes the config file's folder. Default: the process's working directory.
   */
  readonly baseDir?: string;
}

/** Aliases a document may expand; bounds "billion laughs" documents. */
const MAX_ALIAS_COUNT = 100;

/**
 * Parses YAML `text` and validates it with `schema`.
 *
 * The schema should be built from strict objects (`z.strictObject`) so unknown keys are errors.
 * An empty document counts as an empty mapping (so missing required keys are each reported).
 * Relative secret-source file paths are resolved against `options.baseDir`. The result is
 * deep-frozen.
 *
 * @param sourceName the file name (or other name) used in error messages
 * @throws ConfigError for YAML syntax errors (with line and column), and for every schema
 *   problem at once (each with its dotted field path)
 */
export function parseConfig<S extends z.ZodType>(
  text: string,
  schema: S,
  sourceName: string,
  options: ParseConfigOptions = {},
): DeepReadonly<z.output<S>> {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const yamlProblems = [...document.errors, ...document.warnings].map((e) => yamlProblem(e, lineCounter));
  if (yamlProblems.length > 0) {
    throw new ConfigError(sourceName, yamlProblems, { cause: document.errors[0] ?? document.warnings[0] });
  }

  let data: unknown;
  try {
    data = document.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    // Unresolved or excessive aliases surface only when the document is converted.
    const message = error instanceof Error ? error.message : String(error);
    throw new ConfigError(sourceName, [{ path: '', message: `YAML error: ${message}` }], { cause: error });
  }

  const result = schema.safeParse(data ?? {}, { error: configErrorMap });
  if (!result.success) throw new ConfigError(sourceName, schemaProblems(result.error), { cause: result.error });

  const value: z.output<S> = result.data;
  resolveSecretSourcePaths(value, options.baseDir ?? process.cwd());
  return deepFreeze(value);
}

function yamlProblem(error: YAMLError, lineCounter: LineCounter): ConfigProblem {
  const { line, col } = lineCounter.linePos(error.pos[0]);
  return {
    path: '',
    message: `YAML syntax error at line ${line}, column ${col}: ${error.message}`,
    line,
    column: col,
  };
}
