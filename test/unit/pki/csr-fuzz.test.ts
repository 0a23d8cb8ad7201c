import { expect } from 'chai';
import { fuzzCsrReader } from './csr-fuzz.js';

describe('pki/check-csr: fuzzing (fast-check)', () => {
  it('1,000 mutated, generated and random CSRs: invalid BrokerErrors only, no acceptance without proof of possession, the reference decisions', async () => {
    const report = await fuzzCsrReader(1000, { seed: 20260301 });
    // The inputs reach past the DER checks: a fuzzer that only ever hit "malformed" would prove little.
    expect(report.accepted).to.be.greaterThan(20);
    for (const code of ['pki.csr_malformed', 'pki.csr_signature', 'pki.csr_extension', 'pki.csr_san', 'pki.csr_key_type', 'pki.csr_signature_algorithm', 'pki.csr_ca_requested']) {
      expect(report.refused[code] ?? 0, code).to.be.greaterThan(0);
    }
  });
});
