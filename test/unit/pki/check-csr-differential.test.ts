import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import { SignatureAlgorithmOid, checkCsr } from '../../../src/pki/index.js';
import { expectBrokerError } from './pki-fixtures.js';
import { checkCsrReference } from './check-csr-reference.js';
import { csrCorpus, csrOutcome, csrWithSpki, expectRememberedSpki, p256Spki, type CsrSample } from './csr-differential.js';

describe('pki/check-csr: differential test against the reference implementation', () => {
  let corpus: CsrSample[];

  before(() => {
    corpus = csrCorpus();
  });

  it('decides every corpus CSR as the reference does: same result, or the same error kind, code and messages', async () => {
    const seen = { accepted: 0, codes: new Set<string>() };
    for (const sample of corpus) {
      const fast = await csrOutcome(checkCsr, sample.input);
      const reference = await csrOutcome(checkCsrReference, sample.input);
      expect(fast, sample.name).to.deep.equal(reference);
      if (fast.accepted) seen.accepted++;
      else seen.codes.add(fast.code ?? fast.thrown);
      await expectRememberedSpki(checkCsr, sample.input);
    }
    // The corpus reaches every outcome: a broken corpus would compare nothing.
    expect(seen.accepted).to.be.greaterThanOrEqual(15);
    expect([...seen.codes].sort()).to.deep.equal([
      'pki.csr_attribute',
      'pki.csr_ca_requested',
      'pki.csr_extension',
      'pki.csr_key_type',
      'pki.csr_malformed',
      'pki.csr_pem',
      'pki.csr_san',
      'pki.csr_signature',
      'pki.csr_signature_algorithm',
      'pki.csr_too_large',
    ]);
  });

  it('refuses an EC point at infinity as pki.csr_key_type (the reference crashed the process: Node aborts on the key\'s asymmetricKeyDetails)', async () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    const spkis = [
      p256Spki(Buffer.from([0])),
      Buffer.from('3016301006072a8648ce3d020106052b8104002203020000', 'hex'), // P-384
      Buffer.from('3019301306072a8648ce3d020106082a8648ce3d03010103020000', 'hex'), // P-192
      Buffer.from('3019301306072a8648ce3d020106082a8648ce3d03010703020400', 'hex'), // 4 "unused" bits: OpenSSL ignores them (found by the fuzzer)
    ];
    for (const spki of spkis) {
      await expectBrokerError(
        () => checkCsr(csrWithSpki(spki, key, { oid: SignatureAlgorithmOid.ecdsaWithSha256, digest: 'sha256' })),
        'invalid',
        'pki.csr_key_type',
        /^the CSR's public key \(algorithm 1\.2\.840\.10045\.2\.1\) cannot be read or is of an unsupported type/,
      );
    }
  });
});
