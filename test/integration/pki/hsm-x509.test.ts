/**
 * The Signer seam end to end: a self-signed CA and a leaf from a CSR, built by @peculiar/x509
 * and signed by keys inside SoftHSM through HsmSigner, accepted by `openssl verify -x509_strict`.
 * Covers the encodings: PKCS#11 gives ECDSA as r||s, X.509 needs DER.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { ecdsaRawToDer, type KeyType } from '../../../src/core/index.js';
import { HsmSigner, HsmToken } from '../../../src/hsm/index.js';
import { SignerCrypto } from '../../../src/pki/signer-crypto.js';
import { createTestToken } from '../../helpers/softhsm.js';
import { openssl } from '../../helpers/openssl.js';

const DAY_MS = 86_400_000;
const TRUST_DOMAIN = 'anonymizer.test';

function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f | 0x01; // positive and 16 bytes long
  return bytes.toString('hex');
}


describe('integration: X.509 signed by HSM keys through the Signer', function () {
  let token: HsmToken;
  let dir: string;

  before(async () => {
    const testToken = createTestToken('x509');
    token = await HsmToken.open({ modulePath: testToken.modulePath, tokenLabel: testToken.label, pin: testToken.pin, sessions: 2 });
    dir = mkdtempSync(join(tmpdir(), 'credbroker-x509-'));
  });

  after(async () => {
    // Guarded: when SoftHSM is missing, `before` failed with how to install it; say only that.
    if ((token as HsmToken | undefined) !== undefined) await token.close();
    if ((dir as string | undefined) !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  for (const caType of ['P-256', 'P-384', 'RSA-3072', 'Ed25519'] as KeyType[]) {
    it(`${caType} CA self-signed and a P-256 leaf from an HSM-signed CSR pass openssl verify -x509_strict`, async () => {
      const caSigner = await HsmSigner.create(token, (await token.generateKeyPair({ label: `ca-${caType}`, keyType: caType })).label);
      const ca = await SignerCrypto.create(caSigner);
      const caName = `CN=credbroker test root ${caType},O=credbroker`;
      const caCert = await x509.X509CertificateGenerator.createSelfSigned(
        {
          serialNumber: serial(),
          name: caName,
          notBefore: new Date(Date.now() - DAY_MS),
          notAfter: new Date(Date.now() + 30 * DAY_MS),
          signingAlgorithm: ca.signingAlgorithm,
          keys: { privateKey: ca.signingKey, publicKey: ca.publicKey },
          extensions: [
            new x509.BasicConstraintsExtension(true, 1, true),
            new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
            await x509.SubjectKeyIdentifierExtension.create(ca.publicKey, false, ca.crypto),
          ],
        },
        ca.crypto,
      );

      // The service's key is on the HSM too here, so the CSR's proof of possession is an HSM signature.
      const leafSigner = await HsmSigner.create(token, (await token.generateKeyPair({ label: `leaf-for-${caType}`, keyType: 'P-256' })).label);
      const leafKey = await SignerCrypto.create(leafSigner);
      const csr = await x509.Pkcs10CertificateRequestGenerator.create(
        { name: 'CN=blur', keys: { privateKey: leafKey.signingKey, publicKey: leafKey.publicKey }, signingAlgorithm: leafKey.signingAlgorithm },
        leafKey.crypto,
      );
      expect(await csr.verify(ca.crypto)).to.equal(true);

      const spiffeId = `spiffe://${TRUST_DOMAIN}/blur`;
      const leaf = await x509.X509CertificateGenerator.create(
        {
          serialNumber: serial(),
          subject: 'CN=blur',
          issuer: caCert.subject,
          notBefore: new Date(Date.now() - 60_000),
          notAfter: new Date(Date.now() + 3_600_000),
          signingAlgorithm: ca.signingAlgorithm,
          publicKey: csr.publicKey,
          signingKey: ca.signingKey,
          extensions: [
            new x509.BasicConstraintsExtension(false, undefined, true),
            new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
            new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
            new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }], true),
            await x509.SubjectKeyIdentifierExtension.create(csr.publicKey, false, ca.crypto),
            await x509.AuthorityKeyIdentifierExtension.create(caCert, false, ca.crypto),
          ],
        },
        ca.crypto,
      );

      const caPem = join(dir, `ca-${caType}.pem`);
      const leafPem = join(dir, `leaf-${caType}.pem`);
      writeFileSync(caPem, caCert.toString('pem'));
      writeFileSync(leafPem, leaf.toString('pem'));

      for (const purpose of ['sslclient', 'sslserver']) {
        const result = openssl(['verify', '-x509_strict', '-purpose', purpose, '-CAfile', caPem, leafPem]);
        expect(result.output, result.output).to.contain(`${leafPem}: OK`);
        expect(result.status).to.equal(0);
      }
      expect(openssl(['verify', '-x509_strict', '-CAfile', caPem, caPem]).status).to.equal(0);
      const text = execFileSync('openssl', ['x509', '-noout', '-text', '-in', leafPem], { encoding: 'utf8' });
      expect(text).to.contain(`URI:${spiffeId}`);

      // A flipped bit in the leaf's signature must fail, or the checks above prove nothing.
      const der = Buffer.from(leaf.rawData);
      der[der.length - 3] = (der[der.length - 3] ?? 0) ^ 0x01;
      const badPem = join(dir, `bad-${caType}.pem`);
      writeFileSync(badPem, new x509.X509Certificate(der).toString('pem'));
      expect(openssl(['verify', '-x509_strict', '-CAfile', caPem, badPem]).status).to.not.equal(0);

      if (caType === 'P-256' || caType === 'P-384') {
        // The certificate carries the DER form of the HSM's raw r||s signature.
        const raw = await caSigner.sign(Buffer.from('any message'));
        expect(ecdsaRawToDer(raw, caSigner.algorithm)[0]).to.equal(0x30);
        expect(Buffer.from(leaf.signature)[0]).to.equal(0x30);
      }
    });
  }
});
