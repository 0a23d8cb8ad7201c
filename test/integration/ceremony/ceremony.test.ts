/**
 * Key ceremonies end to end on real SoftHSM tokens: the dev plan (1-of-1) through the CLI, a
 * 2-of-3 root with a later intermediate ceremony, and every refusal the design promises —
 * each leaving the HSM untouched (token objects counted before and after).
 */
import { expect } from 'chai';

import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as x509 from '@peculiar/x509';
import pkcs11js from 'pkcs11js';
import { BrokerError, SoftwareSigner, systemClock, systemRandom } from '../../../src/core/index.js';
import { runCeremony, verifyTranscript, type CeremonySummary } from '../../../src/ceremony/index.js';
import { HsmSigner, HsmToken, Pkcs11Library, listSlotTokens } from '../../../src/hsm/index.js';
import { checkCsr, issueLeafCertificate, parseSpiffeId } from '../../../src/pki/index.js';
import { SignerCrypto } from '../../../src/pki/signer-crypto.js';
import { catchBrokerError } from '../../helpers/broker-error.js';
import { runCli } from '../../helpers/cli.js';
import { countLogins, softHsmDir } from '../../helpers/softhsm.js';
import { openssl } from '../../helpers/openssl.js';

const DEV_PLAN = fileURLToPath(new URL('../../../pki/ceremonies/dev.yaml', import.meta.url));

/** Tokens and the public objects on each: what a plan error must leave exactly as it was. */
function hsmSnapshot(): string[] {
  const library = Pkcs11Library.acquire(softHsmDir().modulePath);
  try {
    const api = library.api;
    return listSlotTokens(api).map(({ slot, summary }) => {
      if (!summary.initialized) return `${summary.label}:free`;
      const session = api.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
      try {
        api.C_FindObjectsInit(session, []);
        const objects = api.C_FindObjects(session, 1000).length;
        api.C_FindObjectsFinal(session);
        return `${summary.label}:${summary.serialNumber}:${objects}`;
      } finally {
        api.C_CloseSession(session);
      }
    }).sort();
  } finally {
    library.release();
  }
}


const quiet = { clock: systemClock, random: systemRandom, print: (): void => undefined };

describe('integration: key ceremonies', function () {
  let dir: string;

  before(() => {
    softHsmDir();
    dir = mkdtempSync(join(tmpdir(), 'credbroker-ceremony-'));
  });

  after(() => {
    if ((dir as string | undefined) !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  describe('the dev ceremony (pki/ceremonies/dev.yaml, 1-of-1) through the CLI', () => {
    let out: string;
    let run: { status: number | null; stdout: string; stderr: string };

    before(async () => {
      out = join(dir, 'dev');
      run = await runCli(['ceremony', 'run', DEV_PLAN, '--out', out]);
    });

    it('completes, prints each step and a summary, and writes its outputs with the right modes', () => {
      expect(run.status, run.stderr).to.equal(0);
      expect(run.stdout).to.match(/\[1\/\d+\] root token "credbroker-dev-root" initialised/);
      expect(run.stdout).to.contain('summary: ceremony "dev-initial" completed');
      for (const [file, mode] of [
        ['root.pem', 0o644],
        ['intermediate.pem', 0o644],
        ['root.crl', 0o644],
        ['transcript.jsonl', 0o644],
        ['root-share-dev-officer', 0o600],
        ['online.pin', 0o600],
        ['online-so.pin', 0o600],
        ['audit-key.pem', 0o644],
        ['token-signing-key.pem', 0o644],
      ] as const) {
        expect(statSync(join(out, file)).mode & 0o777, file).to.equal(mode);
      }
      // No secret reaches the console or the transcript.
      const pin = readFileSync(join(out, 'online.pin'), 'utf8').trim();
      expect(run.stdout + run.stderr).to.not.contain(pin);
      expect(readFileSync(join(out, 'transcript.jsonl'), 'utf8')).to.not.contain(pin);
    });

    it('openssl accepts the chain, and a service leaf issued by the HSM intermediate', async () => {
      const root = join(out, 'root.pem');
      const intermediate = join(out, 'intermediate.pem');
      const chain = openssl(['verify', '-x509_strict', '-CAfile', root, intermediate]);
      expect(chain.output).to.contain(': OK');
      expect(openssl(['crl', '-noout', '-CAfile', root, '-in', join(out, 'root.crl')]).output).to.match(/verify OK/i);
      const text = openssl(['x509', '-noout', '-text', '-in', intermediate]).output;
      // RFC 5280 §4.2.1.10: a URI name constraint names the host, so the trust domain.
      expect(text).to.match(/CA:TRUE, pathlen:0/).and.to.match(/Name Constraints: critical\s+Permitted:\s+URI:anonymizer\.local\s/);

      // The broker's online token as the broker will use it: PIN from the generated 0600 file.
      const onlinePin = readFileSync(join(out, 'online.pin'), 'utf8').trim();
      const { Secret } = await import('../../../src/core/index.js');
      const token = await HsmToken.open({ modulePath: softHsmDir().modulePath, tokenLabel: 'credbroker-dev-online', pin: Secret.from(onlinePin) });
      try {
        const issuer = await HsmSigner.create(token, 'dev-intermediate-2026');
        const service = await SoftwareSigner.generate('P-256');
        const serviceCrypto = await SignerCrypto.create(service);
        const csr = await x509.Pkcs10CertificateRequestGenerator.create(
          { name: 'CN=blur', keys: { privateKey: serviceCrypto.signingKey, publicKey: serviceCrypto.publicKey }, signingAlgorithm: serviceCrypto.signingAlgorithm },
          serviceCrypto.crypto,
        );
        const leaf = await issueLeafCertificate({
          issuerSigner: issuer,
          issuerCertificate: new x509.X509Certificate(readFileSync(intermediate)),
          csr: await checkCsr(new Uint8Array(csr.rawData)),
          spiffeId: parseSpiffeId('spiffe://anonymizer.local/blur'),
          profile: 'service',
          now: new Date(),
          random: systemRandom,
        });
        const leafPath = join(out, 'leaf.pem');
        writeFileSync(leafPath, leaf.toString('pem'));
        for (const purpose of ['sslserver', 'sslclient']) {
          const result = openssl(['verify', '-x509_strict', '-purpose', purpose, '-CAfile', root, '-untrusted', intermediate, leafPath]);
          expect(result.output, result.output).to.contain(`${leafPath}: OK`);
        }
      } finally {
        await token.close();
      }
    });

    it('credbroker ceremony verify accepts the transcript and rejects a tampered copy, naming the line', async () => {
      const transcript = join(out, 'transcript.jsonl');
      const good = await runCli(['ceremony', 'verify', transcript, '--root-cert', join(out, 'root.pem')]);
      expect(good.status, good.stderr).to.equal(0);
      expect(good.stdout).to.match(/transcript ok: \d+ lines/);

      const lines = readFileSync(transcript, 'utf8').split('\n');
      // Someone edits the recorded label of the intermediate key.
      const target = lines.findIndex((line) => line.includes('"dev-intermediate-2026"'));
      expect(target).to.be.greaterThan(0);
      lines[target] = (lines[target] ?? '').replace('"dev-intermediate-2026"', '"dev-intermediate-2027"');
      const tampered = join(out, 'tampered.jsonl');
      writeFileSync(tampered, lines.join('\n'));
      const bad = await runCli(['ceremony', 'verify', tampered, '--root-cert', join(out, 'root.pem')]);
      expect(bad.status).to.equal(1);
      expect(bad.stderr).to.match(/transcript INVALID at line (\d+)/);
      const reported = Number(/line (\d+)/.exec(bad.stderr)?.[1]);
      expect([target + 1, target + 2]).to.include(reported);

      // A transcript re-signed by another key does not pass against the real root.
      const other = await SoftwareSigner.generate('P-384');
      const result = verifyTranscript(readFileSync(transcript, 'utf8'), { publicKey: other.publicKey });
      expect(result.ok).to.equal(false);
    });

    it('a second run is refused before the HSM is touched (outputs exist)', async () => {
      const before = hsmSnapshot();
      const again = await runCli(['ceremony', 'run', DEV_PLAN, '--out', out]);
      expect(again.status).to.equal(1);
      expect(again.stderr).to.contain('already exists: a ceremony never overwrites a file');
      expect(hsmSnapshot()).to.deep.equal(before);
    });

    it('--dry-run prints the steps and touches nothing', async () => {
      const before = hsmSnapshot();
      const dry = await runCli(['ceremony', 'run', DEV_PLAN, '--out', join(dir, 'dev-dry'), '--dry-run']);
      expect(dry.status, dry.stderr).to.equal(0);
      expect(dry.stdout).to.contain('1. initialise root token "credbroker-dev-root"').and.to.contain('dry run: the plan is valid');
      expect(existsSync(join(dir, 'dev-dry'))).to.equal(false);
      expect(hsmSnapshot()).to.deep.equal(before);
    });
  });

  describe('a 2-of-3 root and a later intermediate ceremony', () => {
    const suffix = randomBytes(3).toString('hex');
    const rootLabel = `q-root-${suffix}`;
    const onlineLabel = `q-online-${suffix}`;
    let out: string;
    let first: CeremonySummary;

    function plan(name: string, body: string): string {
      const path = join(out, `${name}.yaml`);
      writeFileSync(path, body);
      return path;
    }

    const rootSection = (initialize: boolean, officers: string, extra = ''): string => `
root:
  token: { label: ${rootLabel}, initialize: ${initialize} }
${initialize ? '  quorum: { shares: 3, threshold: 2 }' : ''}
  officers:
${officers}
  key: { label: root-${suffix}, type: P-384, create: ${initialize} }
  certificate:
${initialize ? '    subject: "CN=quorum test root"\n    validity: 3650d\n' : ''}    path: root.pem
${extra}`;
    const officers = (names: string[]): string => names.map((n) => `    - { name: ${n}, share: { file: share-${n} } }`).join('\n');

    before(async () => {
      out = join(dir, 'quorum');
      const path = join(dir, 'quorum-initial.yaml');
      writeFileSync(
        path,
        `version: 1
name: quorum-initial
trustDomain: quorum.test
${rootSection(true, officers(['alice', 'bob', 'carol']))}
online:
  token: { label: ${onlineLabel}, initialize: true, pin: { file: online.pin }, soPin: { file: online-so.pin } }
  intermediate:
    key: { label: int-1-${suffix}, type: P-256 }
    subject: "CN=quorum test intermediate 1"
    validity: 365d
    output: intermediate-1.pem
crl: { nextUpdate: 30d, output: root-1.crl }
transcript: transcript-1.jsonl
`,
      );
      first = await runCeremony(path, { outDir: out }, quiet);
    });

    it('splits the root PIN into three 0600 share files, none of which holds the PIN', () => {
      expect(first.keys.map((k) => k.label)).to.deep.equal([`root-${suffix}`, `int-1-${suffix}`]);
      const shares = ['alice', 'bob', 'carol'].map((n) => readFileSync(join(out, `share-${n}`), 'utf8'));
      expect(new Set(shares).size).to.equal(3);
      for (const n of ['alice', 'bob', 'carol']) expect(statSync(join(out, `share-${n}`)).mode & 0o777).to.equal(0o600);
      expect(verifyTranscript(readFileSync(join(out, 'transcript-1.jsonl'), 'utf8')).ok).to.equal(true);
    });

    it('two officers sign a new intermediate with the existing root; the CRL number grows; openssl accepts the chain', async () => {
      const path = plan(
        'quorum-second',
        `version: 1
name: quorum-second
trustDomain: quorum.test
${rootSection(false, `${officers(['alice'])}\n    - { name: carol, share: { prompt: "share of carol: " } }`)}
online:
  token: { label: ${onlineLabel}, pin: { file: online.pin } }
  intermediate:
    key: { label: int-2-${suffix}, type: P-256 }
    subject: "CN=quorum test intermediate 2"
    validity: 180d
    output: intermediate-2.pem
crl: { previous: root-1.crl, nextUpdate: 30d, output: root-2.crl }
transcript: transcript-2.jsonl
`,
      );
      // Carol types her share at an echo-free prompt.
      const carolShare = readFileSync(join(out, 'share-carol'), 'utf8').trim();
      const written: string[] = [];
      const prompt = { isTty: true, write: (text: string) => void written.push(text), readHidden: () => Promise.resolve(carolShare) };
      const second = await runCeremony(path, { outDir: out }, { ...quiet, prompt });
      expect(written.join('')).to.contain('share of carol: ').and.to.not.contain(carolShare);
      expect(second.keys.map((k) => k.label)).to.deep.equal([`root-${suffix}`, `int-2-${suffix}`]);
      expect(openssl(['verify', '-x509_strict', '-CAfile', join(out, 'root.pem'), join(out, 'intermediate-2.pem')]).output).to.contain(': OK');
      const crlText = openssl(['crl', '-noout', '-text', '-in', join(out, 'root-2.crl')]).output;
      expect(crlText).to.match(/X509v3 CRL Number:\s*\n?\s*2/);
      const transcript = readFileSync(join(out, 'transcript-2.jsonl'), 'utf8');
      expect(transcript).to.contain('"alice"').and.to.contain('"carol"').and.to.not.contain('"bob"');
      const rootKey = new x509.X509Certificate(readFileSync(join(out, 'root.pem'))).publicKey;
      const { publicKeyFromSpki } = await import('../../../src/core/index.js');
      expect(verifyTranscript(transcript, { publicKey: publicKeyFromSpki(new Uint8Array(rootKey.rawData)) }).ok).to.equal(true);
    });

    it('M − 1 shares: refused with how many are needed, no login attempted, HSM untouched', async () => {
      const path = plan(
        'quorum-short',
        `version: 1
name: quorum-short
trustDomain: quorum.test
${rootSection(false, officers(['bob']))}
crl: { previous: root-1.crl, nextUpdate: 30d, output: root-short.crl }
transcript: transcript-short.jsonl
`,
      );
      const before = hsmSnapshot();
      const outcome = await countLogins(() => runCeremony(path, { outDir: out }, quiet));
      expect(outcome.error).to.be.instanceOf(BrokerError);
      const error = outcome.error as BrokerError;
      const logins = outcome.logins;
      expect(error.code).to.equal('ceremony.quorum_not_met');
      expect(error.publicMessage).to.match(/2 of 3/);
      expect(logins).to.equal(0);
      expect(hsmSnapshot()).to.deep.equal(before);
      expect(existsSync(join(out, 'transcript-short.jsonl'))).to.equal(false);
    });

    it('a wrong share (from another split) is refused before any login; HSM untouched', async () => {
      // A share of an unrelated 2-of-3 split, in carol's file.
      const { splitSecret } = await import('../../../src/ceremony/index.js');
      const { Secret } = await import('../../../src/core/index.js');
      const foreign = await splitSecret(Secret.from(randomBytes(32)), { shares: 3, threshold: 2 }, systemRandom);
      writeFileSync(join(out, 'share-mallory'), `${foreign[2] ?? ''}\n`, { mode: 0o600 });
      const path = plan(
        'quorum-wrong',
        `version: 1
name: quorum-wrong
trustDomain: quorum.test
${rootSection(false, `${officers(['alice'])}\n    - { name: mallory, share: { file: share-mallory } }`)}
crl: { previous: root-1.crl, nextUpdate: 30d, output: root-wrong.crl }
transcript: transcript-wrong.jsonl
`,
      );
      const before = hsmSnapshot();
      const { logins, error } = await countLogins(() => runCeremony(path, { outDir: out }, quiet));
      expect(error).to.be.instanceOf(BrokerError);
      expect((error as BrokerError).code).to.match(/^ceremony\.share_(mismatch|wrong)$/);
      expect(logins).to.equal(0);
      expect(hsmSnapshot()).to.deep.equal(before);
    });

    it('an existing key label is refused in preflight; HSM untouched, no transcript', async () => {
      const path = plan(
        'quorum-dup',
        `version: 1
name: quorum-dup
trustDomain: quorum.test
${rootSection(false, officers(['alice', 'bob']))}
online:
  token: { label: ${onlineLabel}, pin: { file: online.pin } }
  intermediate:
    key: { label: int-1-${suffix}, type: P-256 }
    subject: "CN=dup"
    validity: 30d
    output: intermediate-dup.pem
transcript: transcript-dup.jsonl
`,
      );
      const before = hsmSnapshot();
      const error = await catchBrokerError(runCeremony(path, { outDir: out }, quiet));
      expect(error.code).to.equal('ceremony.key_exists');
      expect(error.publicMessage).to.contain(`"int-1-${suffix}"`);
      expect(hsmSnapshot()).to.deep.equal(before);
      expect(existsSync(join(out, 'transcript-dup.jsonl'))).to.equal(false);
      expect(existsSync(join(out, 'intermediate-dup.pem'))).to.equal(false);
    });
  });

  describe('plan errors: reported all at once, before any HSM call', () => {
    const planText = (overrides: Record<string, string>): string => `version: 1
name: bad
trustDomain: bad.test
root:
  token: { label: bad-root, initialize: true }
  quorum: { shares: 1, threshold: 1 }
  officers: [ { name: o, share: { file: share-o } } ]
  key: { label: bad-root-key, type: ${overrides.rootType ?? 'P-384'}, create: true }
  certificate: { subject: "CN=bad", validity: ${overrides.rootValidity ?? '365d'}, path: ${overrides.rootPath ?? 'root.pem'} }
online:
  token: { label: bad-online, initialize: true, pin: { file: online.pin }, soPin: { file: online-so.pin } }
  intermediate: { key: { label: bad-int, type: P-256 }, subject: "CN=int", validity: ${overrides.intValidity ?? '30d'}, output: int.pem }
${overrides.extra ?? ''}transcript: t.jsonl
`;

    const cases: [string, Record<string, string>, RegExp[]][] = [
      ['unknown keys', { extra: 'crl: { nextUpdate: 30d, output: r.crl, colour: blue }\nsurprise: 1\n' }, [/crl\.colour/, /surprise/]],
      ['an intermediate outliving the root', { rootValidity: '365d', intValidity: '400d' }, [/online\.intermediate\.validity/, /inside its root/]],
      ['RSA 1024', { rootType: 'RSA-1024' }, [/root\.key\.type/, /RSA-1024 is too weak/]],
      ['an existing output file', { rootPath: 'exists.pem' }, [/root\.certificate\.path/, /already exists/]],
      [
        'a root renewal without an existing root, with an intermediate, the old label, an existing output',
        { extra: 'rootRenewal: { key: { label: bad-root-key, type: P-256 }, validity: 30d, certificate: r2.pem, newSignedByOld: exists.pem, oldSignedByNew: r1-by-r2.pem }\n' },
        [/set root\.key\.create to false/, /rootRenewal\.key\.label/, /online\.intermediate.*run a ceremony with the new root/, /rootRenewal\.newSignedByOld.*already exists/],
      ],
    ];
    for (const [name, overrides, messages] of cases) {
      it(`${name}: a ConfigError naming the field; HSM untouched; nothing written`, async () => {
        const out = mkdtempSync(join(dir, 'bad-'));
        writeFileSync(join(out, 'exists.pem'), 'not really a certificate');
        const path = join(out, 'plan.yaml');
        writeFileSync(path, planText(overrides));
        const before = hsmSnapshot();
        const { logins, error } = await countLogins(() => runCeremony(path, { outDir: out }, quiet));
        expect(error).to.be.instanceOf(BrokerError);
        const message = (error as BrokerError).publicMessage;
        for (const expected of messages) expect(message).to.match(expected);
        expect(logins).to.equal(0);
        expect(hsmSnapshot()).to.deep.equal(before);
        expect(existsSync(join(out, 't.jsonl'))).to.equal(false);
      });
    }
  });
});
