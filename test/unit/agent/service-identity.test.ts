import { expect } from 'chai';
import { inspect } from 'node:util';
import { ServiceIdentity, joinPem } from '../../../src/agent/index.js';
import { BrokerError } from '../../../src/core/index.js';
import { selfSignedPems } from './identity-fixture.js';
import { containsPemBody, keyMatchesCertificate } from '../../helpers/pem.js';

describe('agent/ServiceIdentity', () => {
  const spiffeId = 'spiffe://unit.test/pipeline/blur';
  const notBefore = new Date(Date.UTC(2026, 0, 1, 12));
  const notAfter = new Date(Date.UTC(2026, 0, 1, 13));

  it('reads serial, SPIFFE ID and validity from PEMs and checks the key belongs to the certificate', async () => {
    const pems = await selfSignedPems({ spiffeId, notBefore, notAfter, serial: '3c1d2e4f5a6b7c8d9e0f112233445566' });
    const identity = ServiceIdentity.fromPems(pems);
    expect(identity.toJSON()).to.deep.equal({ serial: '3c1d2e4f5a6b7c8d9e0f112233445566', spiffeId, notBefore: notBefore.toISOString(), notAfter: notAfter.toISOString() });
    expect(identity.isValidAt(new Date(notBefore.getTime() - 1))).to.equal(false);
    expect(identity.isValidAt(notBefore)).to.equal(true);
    expect(identity.isValidAt(notAfter)).to.equal(false);
    const other = await selfSignedPems({ spiffeId, notBefore, notAfter });
    expect(() => ServiceIdentity.fromPems({ ...pems, privateKeyPem: other.privateKeyPem })).to.throw(BrokerError, 'does not belong');
    expect(() => ServiceIdentity.fromPems({ ...pems, certificatePem: 'nope' })).to.throw(BrokerError, 'not a PEM certificate');
    expect(() => ServiceIdentity.fromPems({ ...pems, privateKeyPem: 'nope' })).to.throw(BrokerError, 'cannot be read');
  });

  it('never prints or serialises the private key', async () => {
    const identity = ServiceIdentity.fromPems(await selfSignedPems({ spiffeId, notBefore, notAfter }));
    for (const text of [String(identity), JSON.stringify(identity), inspect(identity), inspect({ nested: identity })]) {
      expect(containsPemBody(text, identity.privateKeyPem()), text).to.equal(false);
      expect(text).to.not.match(/-----BEGIN [A-Z ]*KEY-----/);
      expect(text).to.contain(identity.serial);
    }
    expect(keyMatchesCertificate(identity.privateKeyPem(), identity.certificatePem)).to.equal(true);
  });

  it('withTrustBundle keeps key and certificate; the chain to present is leaf then intermediates', async () => {
    const identity = ServiceIdentity.fromPems(await selfSignedPems({ spiffeId, notBefore, notAfter }));
    const next = identity.withTrustBundle('ROOTS');
    expect(next.trustBundlePem).to.equal('ROOTS');
    expect(next.privateKeyPem()).to.equal(identity.privateKeyPem());
    expect(next.serial).to.equal(identity.serial);
    expect(identity.certificateChainPem).to.equal(joinPem(identity.certificatePem, identity.chainPem));
    expect(joinPem('A\n', '', '  B')).to.equal('A\nB\n');
  });
});
