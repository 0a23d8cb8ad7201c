/** Policy documents for the policy tests: a valid base with one place changed per case. */
import { expect } from 'chai';
import { ConfigError } from '../../../src/config/index.js';

/** The trust domain of the test documents. */
export const TD = 'td.test';

/** Parts of a test policy; each is the YAML text after its key. */
export interface PolicyParts {
  readonly version?: string;
  readonly trustDomain?: string;
  readonly joinTokens?: string;
  readonly certificates?: string;
  readonly tokens?: string;
  /** Flow mappings, one per identity, e.g. `{ id: spiffe://td.test/a, role: service, description: d }`. */
  readonly identities?: readonly string[];
  /** Extra top-level lines. */
  readonly extra?: string;
}

/** A policy document: the valid base (global caps at their maximum) with `parts` replaced. */
export function policyYaml(parts: PolicyParts = {}): string {
  const identities = parts.identities ?? [service('spiffe://td.test/a')];
  return [
    `version: ${parts.version ?? '1'}`,
    `trustDomain: ${parts.trustDomain ?? TD}`,
    `joinTokens: ${parts.joinTokens ?? '{ defaultTtl: 15m, maxTtl: 1h }'}`,
    `certificates: ${parts.certificates ?? '{ defaultTtl: 1h, maxTtl: 24h }'}`,
    `tokens: ${parts.tokens ?? '{ defaultTtl: 5m, maxTtl: 1h }'}`,
    identities.length === 0 ? 'identities: []' : 'identities:',
    ...identities.map((identity) => `  - ${identity}`),
    parts.extra ?? '',
  ].join('\n');
}

/**
 * A service identity as a flow mapping, with extra `key: value` fields (which may replace the
 * default description).
 */
export function service(id: string, extra = ''): string {
  return identity(id, 'service', extra);
}

/** An operator identity as a flow mapping. */
export function operator(id: string, extra = ''): string {
  return identity(id, 'operator', extra);
}

function identity(id: string, role: string, extra: string): string {
  const description = /\bdescription:/.test(extra) ? '' : `, description: "test ${role}"`;
  return `{ id: "${id}", role: ${role}${description}${extra === '' ? '' : `, ${extra}`} }`;
}

/** Runs `fn`, expects a ConfigError and returns it. */
export function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return error as ConfigError;
  }
  expect.fail('expected a ConfigError');
}
