import { expect } from 'chai';
import { fuzzCsrTarget } from '../../fuzz/csr-target.js';

describe('pki/check-csr: fuzzing target (a) of issue 7 (short run; `npm run fuzz` runs 10,000+)', () => {
  it('500 truncated, bit-flipped, wrong-OID, huge-SAN, badly signed and odd-key CSRs: accepted only if valid, else BrokerError invalid, never a hang', async () => {
    const report = await fuzzCsrTarget(500, { seed: 20260307, opensslSample: 10 });
    expect(report.examples, report.format()).to.deep.equal([]);
    expect(report.acceptedInvalid).to.equal(0);
    expect(report.crashes).to.equal(0);
    // The inputs reach the deep checks: acceptances, and refusals for each family of fault.
    expect(report.accepted, report.format()).to.be.greaterThan(5);
    for (const code of ['pki.csr_malformed', 'pki.csr_key_type', 'pki.csr_signature', 'pki.csr_signature_algorithm', 'pki.csr_too_large']) {
      expect(report.refused[code] ?? 0, `${code}\n${report.format()}`).to.be.greaterThan(0);
    }
  });
});
