import { expect } from 'chai';
import type * as x509 from '@peculiar/x509';
import { SoftwareSigner } from '../../../src/core/index.js';
import { createCrossCertificate, createIntermediateCertificate, createRootCertificate, verifyChain } from '../../../src/pki/index.js';
import { SeededRandom } from '../../helpers/seeded-random.js';
import { NOW, ROOT_NOT_AFTER, ROOT_NOT_BEFORE, TRUST_DOMAIN, expectBrokerError, webcrypto } from './pki-fixtures.js';

const SUBJECT = 'CN=credbroker test root,O=credbroker';
const RENEWED_AT = new Date('2030-01-01T00:00:00Z');
const NEW_NOT_AFTER = new Date('2040-01-01T00:00:00Z');

describe('pki/cross-certificate', () => {
  const random = new SeededRandom('cross');
  let oldSigner: SoftwareSigner;
  let newSigner: SoftwareSigner;
  let oldRoot: x509.X509Certificate;
  let newRoot: x509.X509Certificate;
  let newByOld: x509.X509Certificate;
  let oldByNew: x509.X509Certificate;

  before(async () => {
    oldSigner = await SoftwareSigner.generate('P-256');
    newSigner = await SoftwareSigner.generate('P-256');
    oldRoot = await createRootCertificate({ signer: oldSigner, subject: SUBJECT, notBefore: ROOT_NOT_BEFORE, notAfter: ROOT_NOT_AFTER, random });
    newRoot = await createRootCertificate({ signer: newSigner, subject: SUBJECT, notBefore: RENEWED_AT, notAfter: NEW_NOT_AFTER, random });
    newByOld = await createCrossCertificate({ issuerSigner: oldSigner, issuerCertificate: oldRoot, subjectCertificate: newRoot, notBefore: RENEWED_AT, notAfter: ROOT_NOT_AFTER, random });
    oldByNew = await createCrossCertificate({ issuerSigner: newSigner, issuerCertificate: newRoot, subjectCertificate: oldRoot, notBefore: RENEWED_AT, notAfter: ROOT_NOT_AFTER, random });
  });

  async function intermediateUnder(signer: SoftwareSigner, root: x509.X509Certificate, notBefore: Date): Promise<x509.X509Certificate> {
    const key = await SoftwareSigner.generate('P-256');
    return createIntermediateCertificate({ issuerSigner: signer, issuerCertificate: root, publicKey: key.publicKey, subject: 'CN=intermediate', trustDomain: TRUST_DOMAIN, notBefore, notAfter: new Date(notBefore.getTime() + 86_400_000 * 365), random });
  }

  it('an intermediate under the new root chains to the old root through the cross certificate (self-issued: pathLen 1 holds)', async () => {
    expect(newByOld.issuer).to.equal(newByOld.subject);
    expect(await newByOld.isSelfSigned(webcrypto)).to.equal(false);
    const intermediate = await intermediateUnder(newSigner, newRoot, RENEWED_AT);
    const at = new Date('2031-01-01T00:00:00Z');
    await verifyChain([intermediate, newByOld, oldRoot], [oldRoot], at);
    await verifyChain([intermediate, newRoot], [newRoot], at);
  });

  it('an intermediate under the old root chains to the new root through the other cross certificate', async () => {
    const intermediate = await intermediateUnder(oldSigner, oldRoot, RENEWED_AT);
    await verifyChain([intermediate, oldByNew, newRoot], [newRoot], new Date('2031-01-01T00:00:00Z'));
  });

  it('without the cross certificate the old root does not accept the new intermediate', async () => {
    const intermediate = await intermediateUnder(newSigner, newRoot, RENEWED_AT);
    await expectBrokerError(() => verifyChain([intermediate, oldRoot], [oldRoot], new Date('2031-01-01T00:00:00Z')), 'invalid', 'pki.chain_signature');
  });

  it('refuses a root of another name (the cross certificate would count against pathLen 1)', async () => {
    const other = await createRootCertificate({ signer: newSigner, subject: 'CN=another root', notBefore: RENEWED_AT, notAfter: NEW_NOT_AFTER, random });
    await expectBrokerError(
      () => createCrossCertificate({ issuerSigner: oldSigner, issuerCertificate: oldRoot, subjectCertificate: other, notBefore: RENEWED_AT, notAfter: ROOT_NOT_AFTER, random }),
      'invalid',
      'pki.cross_subject',
    );
  });

  it('refuses a validity outside either root', async () => {
    await expectBrokerError(
      () => createCrossCertificate({ issuerSigner: oldSigner, issuerCertificate: oldRoot, subjectCertificate: newRoot, notBefore: RENEWED_AT, notAfter: NEW_NOT_AFTER, random }),
      'invalid',
      'pki.validity',
    );
    await expectBrokerError(
      () => createCrossCertificate({ issuerSigner: oldSigner, issuerCertificate: oldRoot, subjectCertificate: newRoot, notBefore: NOW, notAfter: ROOT_NOT_AFTER, random }),
      'invalid',
      'pki.validity',
    );
  });

  it('refuses an issuer certificate that is not the signer\'s', async () => {
    await expectBrokerError(
      () => createCrossCertificate({ issuerSigner: newSigner, issuerCertificate: oldRoot, subjectCertificate: newRoot, notBefore: RENEWED_AT, notAfter: ROOT_NOT_AFTER, random }),
      'internal',
      'pki.issuer_key_mismatch',
    );
  });
});
