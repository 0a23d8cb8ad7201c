import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../../src/config/index.js';
import { loadPolicyFile, Policy, PolicyHolder } from '../../../src/policy/index.js';
import { configError, policyYaml, service } from './policy-fixtures.js';

describe('policy/policy-holder', () => {
  let dir: string;
  let file: string;
  /** Writes the policy file atomically, as the docs ask operators to. */
  const write = (text: string | Uint8Array): void => {
    writeFileSync(`${file}.tmp`, text);
    renameSync(`${file}.tmp`, file);
  };
  /** Every event a holder emits, in order. */
  const record = (holder: PolicyHolder): { reloaded: [Policy, Policy][]; rejected: ConfigError[] } => {
    const events = { reloaded: [] as [Policy, Policy][], rejected: [] as ConfigError[] };
    holder.on('reloaded', (policy, previous) => events.reloaded.push([policy, previous]));
    holder.on('rejected', (error) => events.rejected.push(error));
    return events;
  };

  const V1 = policyYaml({ identities: [service('spiffe://td.test/a')] });
  const V2 = policyYaml({ identities: [service('spiffe://td.test/a'), service('spiffe://td.test/b')] });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'credbroker-policy-'));
    file = join(dir, 'policy.yaml');
    write(V1);
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('load reads the file; the policy names it and hashes its bytes', () => {
    const holder = PolicyHolder.load(file);
    expect(holder.path).to.equal(file);
    expect(holder.current.source).to.equal(file);
    expect(holder.current.sha256).to.equal(createHash('sha256').update(V1).digest('hex'));
    expect(holder.current.lookup('spiffe://td.test/a')?.id).to.equal('spiffe://td.test/a');
  });

  it('load throws a ConfigError naming the file for a bad policy', () => {
    write('version: 1\n');
    const error = configError(() => PolicyHolder.load(file));
    expect(error.source).to.equal(file);
    expect(error.message).to.contain(file);
  });

  it('reload picks up a good change, emits reloaded (new, previous) and says it changed', () => {
    const holder = PolicyHolder.load(file);
    const events = record(holder);
    const first = holder.current;
    expect(first.lookup('spiffe://td.test/b')).to.equal(null);
    write(V2);
    const result = holder.reload();
    expect(result.ok).to.equal(true);
    if (!result.ok) return;
    expect(result.changed).to.equal(true);
    expect(result.policy).to.equal(holder.current);
    expect(holder.current.lookup('spiffe://td.test/b')?.id).to.equal('spiffe://td.test/b');
    expect(holder.current.sha256).not.to.equal(first.sha256);
    expect(events.reloaded).to.have.length(1);
    expect(events.reloaded[0]![0]).to.equal(holder.current);
    expect(events.reloaded[0]![1]).to.equal(first);
    expect(events.rejected).to.deep.equal([]);
  });

  it('reload of an unchanged file succeeds with changed false and the same sha256', () => {
    const holder = PolicyHolder.load(file);
    const events = record(holder);
    const result = holder.reload();
    expect(result.ok && !result.changed).to.equal(true);
    expect(holder.current.sha256).to.equal(events.reloaded[0]![1].sha256);
  });

  const bad: [string, () => void, RegExp][] = [
    ['an invalid policy', () => { write(policyYaml({ tokens: '{ defaultTtl: 5m, maxTtl: 2h }' })); }, /tokens\.maxTtl: 2h is above the hard cap of 1h/],
    ['a YAML syntax error (a half-written file)', () => { write(V2.slice(0, V2.indexOf('identities:') + 40)); }, /YAML syntax error at line 7, column \d+: Missing closing "quote/],
    ['an empty file', () => { write(''); }, /version: expected version: 1/],
    ['a missing file', () => { rmSync(file); }, /cannot read configuration file .*policy\.yaml: no such file or directory \(ENOENT\)/],
    ['a file that is not UTF-8', () => { write(new Uint8Array([0x76, 0x65, 0x72, 0xff, 0xfe])); }, /not valid UTF-8/],
    ['a different trust domain', () => { write(policyYaml({ trustDomain: 'other.test', identities: [service('spiffe://other.test/a')] })); }, /trustDomain: changed from "td.test" to "other.test".*needs a new intermediate and a restart/],
  ];
  for (const [what, breakIt, message] of bad) {
    it(`reload keeps the old policy on ${what}, returns the ConfigError and emits rejected`, () => {
      const holder = PolicyHolder.load(file);
      const events = record(holder);
      const before = holder.current;
      breakIt();
      const result = holder.reload();
      expect(result.ok).to.equal(false);
      if (result.ok) return;
      expect(result.error).to.be.instanceOf(ConfigError);
      expect(result.error.message).to.match(message);
      expect(result.error.message).to.contain(file);
      expect(holder.current).to.equal(before);
      expect(events.rejected).to.deep.equal([result.error]);
      expect(events.reloaded).to.deep.equal([]);
      // and the next good file is picked up again
      write(V2);
      expect(holder.reload().ok).to.equal(true);
      expect(holder.current.identities()).to.have.length(2);
    });
  }

  it('a rejected reload with no listener does not throw (rejected is not an error event)', () => {
    const holder = PolicyHolder.load(file);
    write('nonsense: [');
    expect(holder.reload().ok).to.equal(false);
  });

  it('the constructor takes a policy parsed elsewhere', () => {
    const holder = new PolicyHolder(file, Policy.parse(V2, 'inline'));
    expect(holder.current.source).to.equal('inline');
    expect(holder.reload().ok).to.equal(true);
    expect(holder.current.source).to.equal(file);
  });

  it('loadPolicyFile keeps a byte order mark in the hash', () => {
    const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...Buffer.from(V1)]);
    write(bom);
    expect(loadPolicyFile(file).sha256).to.equal(createHash('sha256').update(bom).digest('hex'));
  });
});
