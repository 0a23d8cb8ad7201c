/**
 * Exposure = validity × privilege scope × resources on the fixture policy: each factor by hand,
 * the ranking, every flag where it belongs (and nowhere else), the policy findings reused.
 */
import { expect } from 'chai';
import { OPERATOR_SCOPE_WEIGHT, exposureReport, type ExposureEntry } from '../../../src/cli/report/exposure-report.js';
import { exposureText } from '../../../src/cli/report/exposure-text.js';
import { ALICE, BLUR, HOUR_MS, IMPORT, MINUTE_MS, NOW, WORKERS, fixturePolicy } from './report-fixtures.js';

describe('report/exposure-report', () => {
  const report = exposureReport(fixturePolicy(), NOW);
  const byId = (id: string): ExposureEntry => {
    const entry = report.identities.find((e) => e.id === id);
    if (entry === undefined) throw new Error(`no ${id}`);
    return entry;
  };
  const codes = (id: string): string[] => byId(id).flags.map((f) => f.code);

  it('ranks highest exposure first', () => {
    expect(report.identities.map((e) => [e.rank, e.id, e.score])).to.deep.equal([
      // 1 h × (5 distinct pairs × 10) × 3 resources of the policy
      [1, ALICE, 150],
      // (2 h + 15 m) × (2 audiences × 2 scopes) × 2 resources
      [2, BLUR, 18],
      // (4 h global + 30 m global) × (1 × 3) × 1 (none listed)
      [3, WORKERS, 13.5],
      // (1 h + 10 m) × 1 × 1
      [4, IMPORT, 1.17],
    ]);
    expect(report).to.include({ kind: 'credbroker.exposure', version: 1, generatedAt: NOW.toISOString() });
  });

  it('validity: the certificate maxTtl plus the token maxTtl, in hours', () => {
    expect(byId(BLUR).validity).to.deep.include({ value: 2.25, certificateMaxTtlMs: 2 * HOUR_MS, tokenMaxTtlMs: 15 * MINUTE_MS });
    expect(byId(ALICE).validity).to.deep.include({ value: 1, tokenMaxTtlMs: null });
    expect(byId(ALICE).validity.explanation).to.equal('certificate maxTtl 1h; no tokens');
    expect(byId(WORKERS).validity.value, 'an identity without its own caps gets the global ones').to.equal(4.5);
  });

  it('privilege scope: audiences × scopes; an operator gets every pair of the policy, weighted', () => {
    expect(byId(BLUR).privilegeScope).to.deep.include({ value: 4, audiences: 2, scopes: 2, explanation: '2 audiences × 2 scopes' });
    expect(byId(IMPORT).privilegeScope.value).to.equal(1);
    // storage.source × {media.source.write, media.source.read, media.anonymized.write}, storage.anonymized × {media.source.read, media.anonymized.write}
    expect(byId(ALICE).privilegeScope.value).to.equal(5 * OPERATOR_SCOPE_WEIGHT);
    expect(byId(ALICE).privilegeScope.explanation).to.contain('every audience × scope pair of the policy (5)');
  });

  it('resources: the listed names (1 when none are listed); an operator reaches them all', () => {
    expect(byId(BLUR).resources).to.deep.include({ value: 2, names: ['bucket:source', 'bucket:anonymized'] });
    expect(byId(WORKERS).resources).to.deep.include({ value: 1, names: [] });
    expect(byId(WORKERS).resources.explanation).to.contain('none listed');
    expect(byId(ALICE).resources.names).to.deep.equal(['api:broker', 'bucket:anonymized', 'bucket:source']);
  });

  it('flags each outlier where it belongs, reusing the policy findings', () => {
    expect(codes(ALICE)).to.deep.equal(['operator', 'score-outlier']);
    expect(codes(BLUR)).to.deep.equal(['bearer-tokens']);
    expect(codes(WORKERS)).to.have.members(['every-scope', 'any-depth-pattern', 'certificate-ttl-at-cap', 'token-ttl-at-cap', 'no-resources', 'wildcard-dns']);
    expect(codes(IMPORT)).to.deep.equal([]);
    const bearer = byId(BLUR).flags[0];
    expect(bearer?.path).to.equal('identities[2].tokens.requireBinding');
    expect(bearer?.message).to.contain('bearer tokens');
    expect(report.outlierAbove).to.be.a('number').and.to.be.above(18).and.below(150);
    expect(report.policyFindings).to.deep.equal([]);
  });

  it('findings that are not about one identity are listed for the policy', () => {
    const noOperator = exposureReport(
      fixturePolicy(`version: 1
trustDomain: td.test
joinTokens: { defaultTtl: 15m, maxTtl: 1h }
certificates: { defaultTtl: 1h, maxTtl: 24h }
tokens: { defaultTtl: 5m, maxTtl: 1h }
identities:
  - { id: "spiffe://td.test/a", role: service, description: a, certificates: { maxTtl: 1h }, tokens: { audiences: [x], scopes: [r], maxTtl: 5m }, resources: [bucket:a] }
`),
      NOW,
    );
    expect(noOperator.policyFindings.map((f) => f.path)).to.deep.equal(['joinTokens.maxTtl', 'certificates.maxTtl', 'tokens.maxTtl', 'identities']);
    expect(noOperator.outlierAbove, 'too few identities for quartiles').to.equal(null);
    expect(noOperator.identities[0]?.flags.map((f) => f.code), 'one scope in the policy is not "every scope"').to.deep.equal([]);
  });

  it('ties are ordered by ID; an empty policy ranks nothing and says so', () => {
    const twins = exposureReport(
      fixturePolicy(`version: 1
trustDomain: td.test
joinTokens: { defaultTtl: 15m, maxTtl: 30m }
certificates: { defaultTtl: 1h, maxTtl: 2h }
tokens: { defaultTtl: 5m, maxTtl: 10m }
identities:
  - { id: "spiffe://td.test/b", role: service, description: b, certificates: { maxTtl: 1h } }
  - { id: "spiffe://td.test/a", role: service, description: a, certificates: { maxTtl: 1h } }
  - { id: "spiffe://td.test/ops", role: operator, description: o, certificates: { maxTtl: 1h } }
`),
      NOW,
    );
    expect(twins.identities.map((e) => e.id)).to.deep.equal(['spiffe://td.test/ops', 'spiffe://td.test/a', 'spiffe://td.test/b']);
    expect(twins.identities[0]?.score, 'an operator of a policy without tokens: 1 h × 10 × 1').to.equal(10);
    const none = exposureReport(fixturePolicy('version: 1\ntrustDomain: td.test\njoinTokens: { defaultTtl: 15m, maxTtl: 30m }\ncertificates: { defaultTtl: 1h, maxTtl: 2h }\ntokens: { defaultTtl: 5m, maxTtl: 10m }\nidentities: []\n'), NOW);
    expect(none.identities).to.deep.equal([]);
    expect(exposureText(none).join('\n')).to.contain('the policy has no identities');
  });

  it('text: the ranking table, then every score explained and every flag with its reason', () => {
    const text = exposureText(report).join('\n');
    expect(text).to.match(/ 1 {2}spiffe:\/\/td\.test\/ops\/alice +operator +1 h +50 +3 +150 +operator, score-outlier/);
    expect(text).to.contain('2. spiffe://td.test/pipeline/blur (service, exact): 18 = 2.25 h × 4 × 2');
    expect(text).to.contain('validity 2.25 h: certificate maxTtl 2h + token maxTtl 15m');
    expect(text).to.contain('! bearer-tokens: identities[2].tokens.requireBinding is false');
    expect(text).to.contain('! any-depth-pattern: identities[3].id ends with "/**"');
  });
});
