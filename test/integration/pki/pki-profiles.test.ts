/**
 * The PKI profiles end to end with keys inside SoftHSM: a P-384 root and a P-256 intermediate
 * made as a ceremony would make them, a service leaf and an operator leaf issued from CSRs that
 * OpenSSL made, and a CRL. Everything is checked by tools that are not credbroker: `openssl
 * verify -x509_strict` per purpose, `openssl x509 -text`, `openssl crl` and `-crl_check`, and
 * zlint's RFC 5280 lints (0 errors, 0 warnings).
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as x509 from '@peculiar/x509';
import { spkiOf } from '../../../src/core/index.js';
import { HsmSigner, HsmToken } from '../../../src/hsm/index.js';
import {
  authorityKeyIdentifierExtension,
  basicConstraintsExtension,
  buildChain,
  buildCrl,
  checkCsr,
  createIntermediateCertificate,
  createRootCertificate,
  crlToPem,
  extendedKeyUsageExtension,
  fieldsOf,
  issueLeafCertificate,
  keyIdentifierOf,
  keyUsageExtension,
  newSerialNumber,
  parseSpiffeId,
  signerCryptoFor,
  spiffeIdOfCertificate,
  subjectAltNameExtension,
  subjectKeyIdentifierExtension,
  verifyChain,
  ExtendedKeyUsageOid,
} from '../../../src/pki/index.js';
import { SeededRandom } from '../../helpers/seeded-random.js';
import { createTestToken } from '../../helpers/softhsm.js';
import { openssl } from '../../helpers/openssl.js';

const TRUST_DOMAIN = 'anonymizer.test';
const SERVICE_ID = `spiffe://${TRUST_DOMAIN}/media/blur`;
const OPERATOR_ID = `spiffe://${TRUST_DOMAIN}/operator/alice`;
const NOW = new Date('2026-03-01T12:00:00Z');
/** When openssl checks: 10 minutes into the leaves' life. */
const AT_SECONDS = String(Math.floor(NOW.getTime() / 1000) + 600);

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** zlint where CI and the workstations have it: ../shared/bin next to the repository. */
const ZLINT_PATH = join(repoRoot, '..', 'shared', 'bin', 'zlint');
const ZLINT = existsSync(ZLINT_PATH) ? ZLINT_PATH : undefined;


describe('integration: PKI profiles with HSM keys, checked by openssl and zlint', function () {
  let token: HsmToken;
  let dir: string;
  let root: x509.X509Certificate;
  let intermediate: x509.X509Certificate;
  let intermediateSigner: HsmSigner;
  let service: x509.X509Certificate;
  let operator: x509.X509Certificate;
  const pem: Record<'root' | 'intermediate' | 'service' | 'operator', string> = { root: '', intermediate: '', service: '', operator: '' };

  before(async () => {
    const testToken = createTestToken('pki');
    token = await HsmToken.open({ modulePath: testToken.modulePath, tokenLabel: testToken.label, pin: testToken.pin, sessions: 2 });
    dir = mkdtempSync(join(tmpdir(), 'credbroker-pki-'));
    const random = new SeededRandom('integration-pki');

    const rootSigner = await HsmSigner.create(token, (await token.generateKeyPair({ label: 'root-2026', keyType: 'P-384' })).label);
    intermediateSigner = await HsmSigner.create(token, (await token.generateKeyPair({ label: 'intermediate-2026', keyType: 'P-256' })).label);
    root = await createRootCertificate({
      signer: rootSigner,
      subject: 'CN=credbroker test root 2026,O=credbroker',
      notBefore: new Date('2026-01-01T00:00:00Z'),
      notAfter: new Date('2036-01-01T00:00:00Z'),
      random,
    });
    intermediate = await createIntermediateCertificate({
      issuerSigner: rootSigner,
      issuerCertificate: root,
      publicKey: intermediateSigner.publicKey,
      subject: 'CN=credbroker test intermediate 2026,O=credbroker',
      trustDomain: TRUST_DOMAIN,
      notBefore: new Date('2026-01-01T00:00:00Z'),
      notAfter: new Date('2027-01-01T00:00:00Z'),
      random,
    });

    // The services' keys are made by OpenSSL, as an agent would; they stay in the temp dir.
    const serviceCsr = join(dir, 'service.csr');
    execFileSync('openssl', [
      'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=blur',
      '-addext', `subjectAltName=URI:${SERVICE_ID},DNS:blur.media.internal`,
      '-keyout', join(dir, 'service.key'), '-outform', 'DER', '-out', serviceCsr,
    ], { stdio: 'pipe' });
    const operatorCsr = join(dir, 'operator.csr');
    execFileSync('openssl', ['req', '-new', '-newkey', 'ed25519', '-nodes', '-subj', '/CN=alice', '-keyout', join(dir, 'operator.key'), '-outform', 'PEM', '-out', operatorCsr], { stdio: 'pipe' });

    service = await issueLeafCertificate({
      issuerSigner: intermediateSigner,
      issuerCertificate: intermediate,
      csr: await checkCsr(readFileSync(serviceCsr)),
      spiffeId: parseSpiffeId(SERVICE_ID),
      profile: 'service',
      allowedDnsNames: ['*.media.internal'],
      now: NOW,
      random,
    });
    operator = await issueLeafCertificate({
      issuerSigner: intermediateSigner,
      issuerCertificate: intermediate,
      csr: await checkCsr(readFileSync(operatorCsr, 'utf8')),
      spiffeId: parseSpiffeId(OPERATOR_ID),
      profile: 'operator',
      ttlMs: 8 * 3_600_000,
      now: NOW,
      random,
    });
    for (const [name, certificate] of [['root', root], ['intermediate', intermediate], ['service', service], ['operator', operator]] as const) {
      pem[name] = join(dir, `${name}.pem`);
      writeFileSync(pem[name], certificate.toString('pem'));
    }
  });

  after(async () => {
    // Guarded: when SoftHSM is missing, `before` failed with how to install it; say only that.
    if ((token as HsmToken | undefined) !== undefined) await token.close();
    if ((dir as string | undefined) !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  function verify(purpose: 'sslserver' | 'sslclient', leafPem: string, extra: string[] = []): { status: number | null; output: string } {
    return openssl(['verify', '-x509_strict', '-attime', AT_SECONDS, '-purpose', purpose, ...extra, '-CAfile', pem.root, '-untrusted', pem.intermediate, leafPem]);
  }

  it('the service leaf passes openssl verify -x509_strict as TLS server and client', () => {
    for (const purpose of ['sslserver', 'sslclient'] as const) {
      const result = verify(purpose, pem.service);
      expect(result.output, `${purpose}: ${result.output}`).to.contain(`${pem.service}: OK`);
      expect(result.status).to.equal(0);
    }
  });

  it('the operator leaf passes as TLS client and fails as TLS server', () => {
    const client = verify('sslclient', pem.operator);
    expect(client.output, client.output).to.contain(`${pem.operator}: OK`);
    expect(client.status).to.equal(0);
    const server = verify('sslserver', pem.operator);
    expect(server.status, server.output).to.not.equal(0);
    expect(server.output).to.match(/unsuitable certificate purpose|unsupported certificate purpose/);
  });

  it('the root and the intermediate pass openssl verify -x509_strict', () => {
    expect(openssl(['verify', '-x509_strict', '-attime', AT_SECONDS, '-CAfile', pem.root, pem.root]).status).to.equal(0);
    expect(openssl(['verify', '-x509_strict', '-attime', AT_SECONDS, '-CAfile', pem.root, pem.intermediate]).status).to.equal(0);
  });

  it('openssl x509 -text shows each profile', () => {
    const text = (path: string): string => execFileSync('openssl', ['x509', '-noout', '-text', '-in', path], { encoding: 'utf8' });
    const rootText = text(pem.root);
    expect(rootText).to.match(/X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:1/);
    expect(rootText).to.match(/X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(rootText).to.contain('ecdsa-with-SHA384');

    const intermediateText = text(pem.intermediate);
    expect(intermediateText).to.match(/X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(intermediateText).to.match(/X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign\n/);
    expect(intermediateText).to.match(/X509v3 Name Constraints: critical\s+Permitted:\s+URI:anonymizer\.test\n/);
    expect(intermediateText).to.contain(`URI:spiffe://${TRUST_DOMAIN}\n`);

    const serviceText = text(pem.service);
    expect(serviceText).to.match(/Subject: *\n/);
    expect(serviceText).to.match(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
    expect(serviceText).to.match(/X509v3 Key Usage: critical\s+Digital Signature\n/);
    expect(serviceText).to.match(/X509v3 Extended Key Usage: *\n\s+TLS Web Server Authentication, TLS Web Client Authentication\n/);
    expect(serviceText).to.match(new RegExp(`X509v3 Subject Alternative Name: critical\\s+URI:${SERVICE_ID}, DNS:blur\\.media\\.internal\\n`));

    const operatorText = text(pem.operator);
    expect(operatorText).to.match(/X509v3 Extended Key Usage: *\n\s+TLS Web Client Authentication\n/);
    expect(operatorText).to.not.contain('Server Authentication');
    expect(operatorText).to.contain('ED25519');
    expect(operatorText).to.match(new RegExp(`X509v3 Subject Alternative Name: critical\\s+URI:${OPERATOR_ID}\\n`));
  });

  it('credbroker builds and verifies the same chains, and reads the SPIFFE IDs', async () => {
    const at = new Date(Number(AT_SECONDS) * 1000);
    const chain = await buildChain(service, [intermediate], [root]);
    expect(chain.map((c) => c.serialNumber)).to.deep.equal([service.serialNumber, intermediate.serialNumber, root.serialNumber]);
    await verifyChain(chain, [root], at, { purpose: 'serverAuth' });
    await verifyChain(await buildChain(operator, [intermediate], [root]), [root], at, { purpose: 'clientAuth' });
    expect(spiffeIdOfCertificate(service).toString()).to.equal(SERVICE_ID);
    expect(spiffeIdOfCertificate(operator).toString()).to.equal(OPERATOR_ID);
  });

  it('openssl enforces the intermediate name constraints: a leaf of another trust domain fails', async () => {
    // Hand-made, since issueLeafCertificate refuses to make it.
    const adapter = await signerCryptoFor(intermediateSigner);
    const key = createPublicKey(readFileSync(join(dir, 'service.key')));
    const outside = await x509.X509CertificateGenerator.create(
      {
        serialNumber: newSerialNumber(new SeededRandom('outside')),
        issuer: new x509.Name(fieldsOf(intermediate).subjectRaw),
        notBefore: NOW,
        notAfter: new Date(NOW.getTime() + 3_600_000),
        publicKey: spkiOf(key),
        signingKey: adapter.signingKey,
        signingAlgorithm: adapter.signingAlgorithm,
        extensions: [
          basicConstraintsExtension(false),
          keyUsageExtension(['digitalSignature']),
          extendedKeyUsageExtension([ExtendedKeyUsageOid.serverAuth, ExtendedKeyUsageOid.clientAuth]),
          subjectKeyIdentifierExtension(keyIdentifierOf(key)),
          authorityKeyIdentifierExtension(keyIdentifierOf(intermediateSigner.publicKey)),
          subjectAltNameExtension([{ kind: 'uniformResourceIdentifier', text: 'spiffe://payments.test/db' }], true),
        ],
      },
      adapter.crypto,
    );
    const outsidePem = join(dir, 'outside.pem');
    writeFileSync(outsidePem, outside.toString('pem'));
    const result = verify('sslclient', outsidePem);
    expect(result.status, result.output).to.not.equal(0);
    expect(result.output).to.match(/permitted subtree violation/);
  });

  it('the CRL verifies with openssl, and openssl -crl_check reports the revoked leaf as revoked', async () => {
    const crl = await buildCrl({
      issuerSigner: intermediateSigner,
      issuerCertificate: intermediate,
      crlNumber: 1n,
      thisUpdate: NOW,
      nextUpdate: new Date(NOW.getTime() + 86_400_000),
      entries: [
        { serialNumber: service.serialNumber, revokedAt: NOW, reason: 'keyCompromise' },
        { serialNumber: newSerialNumber(new SeededRandom('gone')), revokedAt: NOW, reason: 'unspecified' },
      ],
    });
    const crlPem = join(dir, 'crl.pem');
    writeFileSync(crlPem, crl.toString('pem'));
    expect(crl.toString('pem')).to.equal(crlToPem(crl));

    const signature = openssl(['crl', '-in', crlPem, '-noout', '-verify', '-CAfile', pem.intermediate]);
    expect(signature.output, signature.output).to.contain('verify OK');
    expect(signature.status).to.equal(0);
    const text = execFileSync('openssl', ['crl', '-in', crlPem, '-noout', '-text'], { encoding: 'utf8' });
    expect(text).to.match(/X509v3 CRL Number: *\n\s+1\n/);
    expect(text).to.match(/CRL Reason Code: *\n\s+Key Compromise/);
    expect(text).to.contain(`Serial Number: ${service.serialNumber.toUpperCase()}`);

    const revoked = verify('sslserver', pem.service, ['-crl_check', '-CRLfile', crlPem]);
    expect(revoked.status, revoked.output).to.not.equal(0);
    expect(revoked.output).to.contain('certificate revoked');
    const fine = verify('sslclient', pem.operator, ['-crl_check', '-CRLfile', crlPem]);
    expect(fine.output, fine.output).to.contain(`${pem.operator}: OK`);
  });

  it('zlint (RFC 5280 lints) finds 0 errors and 0 warnings in root, intermediate, service and operator', function () {
    if (ZLINT === undefined) {
      console.log(`    note: zlint not found at ${ZLINT_PATH}; skipping only the zlint assertions`);
      this.skip();
    }
    for (const name of ['root', 'intermediate', 'service', 'operator'] as const) {
      const output = execFileSync(ZLINT, ['-includeSources', 'RFC5280', pem[name]], { encoding: 'utf8' });
      const results = JSON.parse(output) as Record<string, { result: string; details?: string }>;
      const ran = Object.values(results).filter((r) => r.result === 'pass').length;
      expect(ran, `${name}: zlint ran no lint`).to.be.greaterThan(20);
      const findings = Object.entries(results)
        .filter(([, r]) => ['warn', 'error', 'fatal'].includes(r.result))
        .map(([lint, r]) => `${lint}: ${r.result}${r.details === undefined ? '' : ` (${r.details})`}`);
      expect(findings, `${name}: ${findings.join('; ')}`).to.deep.equal([]);
    }
  });
});
