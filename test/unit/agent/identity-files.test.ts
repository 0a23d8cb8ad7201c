import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServiceIdentity, loadIdentityFiles, writeFileAtomically, writeIdentityFiles, type IdentityFilePaths } from '../../../src/agent/index.js';
import { Secret, silentLogger, type Logger } from '../../../src/core/index.js';
import { selfSignedPems } from './identity-fixture.js';
import { containsPemBody, keyMatchesCertificate } from '../../helpers/pem.js';

const SPIFFE_ID = 'spiffe://unit.test/pipeline/blur';

function paths(dir: string, pkcs12 = false): IdentityFilePaths {
  return { dir, key: join(dir, 'key.pem'), certificate: join(dir, 'cert.pem'), chain: join(dir, 'chain.pem'), trustBundle: join(dir, 'bundle.pem'), ...(pkcs12 ? { pkcs12: { path: join(dir, 'identity.p12') } } : {}) };
}

const mode = (file: string): number => statSync(file).mode & 0o777;

describe('agent/identity-files', () => {
  let dir: string;
  let identity: ServiceIdentity;

  before(async () => {
    identity = ServiceIdentity.fromPems(await selfSignedPems({ spiffeId: SPIFFE_ID, notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3_600_000) }));
  });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'credbroker-agent-files-'));
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes the key 0600 and certificate, chain and bundle 0644, whatever the umask, and creates the folder', async () => {
    const files = paths(join(dir, 'out'));
    const previous = process.umask(0o077);
    try {
      await writeIdentityFiles(files, identity);
    } finally {
      process.umask(previous);
    }
    expect(mode(files.key)).to.equal(0o600);
    expect(mode(files.certificate)).to.equal(0o644);
    expect(mode(files.chain)).to.equal(0o644);
    expect(mode(files.trustBundle)).to.equal(0o644);
    expect(readFileSync(files.key, 'utf8')).to.equal(identity.privateKeyPem());
    expect(readFileSync(files.certificate, 'utf8')).to.equal(identity.certificatePem);
    expect(readdirSync(files.dir).sort()).to.deep.equal(['bundle.pem', 'cert.pem', 'chain.pem', 'key.pem']);
  });

  it('reads back what it wrote as the same identity', async () => {
    const files = paths(dir);
    await writeIdentityFiles(files, identity);
    const loaded = loadIdentityFiles(files, silentLogger);
    expect(loaded?.toJSON()).to.deep.equal(identity.toJSON());
    expect(loaded?.privateKeyPem()).to.equal(identity.privateKeyPem());
  });

  it('atomic replacement: a reader holding the old file keeps reading the old content; no temp file is left', () => {
    const file = join(dir, 'cert.pem');
    writeFileAtomically(file, 'old certificate', 0o644);
    const fd = openSync(file, 'r');
    const inodeBefore = statSync(file).ino;
    writeFileAtomically(file, 'new certificate', 0o644);
    const buffer = Buffer.alloc(64);
    const read = readSync(fd, buffer, 0, 64, 0);
    expect(buffer.subarray(0, read).toString()).to.equal('old certificate');
    expect(readFileSync(file, 'utf8')).to.equal('new certificate');
    expect(statSync(file).ino, 'a rename, not an overwrite in place').to.not.equal(inodeBefore);
    expect(readdirSync(dir)).to.deep.equal(['cert.pem']);
  });

  it('a failed write leaves the old file and no temp file', () => {
    const file = join(dir, 'cert.pem');
    writeFileAtomically(file, 'old', 0o644);
    // A file cannot be renamed over a directory: the rename fails after the temp file was written.
    mkdirSync(join(dir, 'sub'));
    expect(() => {
      writeFileAtomically(join(dir, 'sub'), 'x', 0o644);
    }).to.throw();
    expect(readFileSync(file, 'utf8')).to.equal('old');
    expect(readdirSync(dir).sort()).to.deep.equal(['cert.pem', 'sub']);
  });

  it('no files: null (enroll afresh); a key that does not match the certificate: null with a warning', async () => {
    const warnings: string[] = [];
    const logger: Logger = { ...silentLogger, warn: (_f, message) => void warnings.push(message) };
    expect(loadIdentityFiles(paths(dir), logger)).to.equal(null);
    const other = await selfSignedPems({ spiffeId: SPIFFE_ID, notBefore: new Date(), notAfter: new Date(Date.now() + 1000) });
    const files = paths(dir);
    await writeIdentityFiles(files, identity);
    writeFileSync(files.key, other.privateKeyPem, { mode: 0o600 });
    expect(loadIdentityFiles(files, logger)).to.equal(null);
    expect(warnings.join('\n')).to.contain('not a usable identity');
    expect(containsPemBody(warnings.join('\n'), other.privateKeyPem)).to.equal(false);
    expect(warnings.join('\n')).to.not.match(/-----BEGIN [A-Z ]*KEY-----/);
  });

  it('a key file readable by others is tightened to 0600, with a warning', async () => {
    const files = paths(dir);
    await writeIdentityFiles(files, identity);
    chmodSync(files.key, 0o644);
    const warnings: Record<string, unknown>[] = [];
    const logger: Logger = { ...silentLogger, warn: (fields) => void warnings.push(fields) };
    expect(loadIdentityFiles(files, logger)).to.not.equal(null);
    expect(mode(files.key)).to.equal(0o600);
    expect(warnings).to.deep.equal([{ file: files.key, mode: '0644' }]);
  });

  it('PKCS#12: 0600, readable by openssl with the password, which reaches openssl through fd 3, never argv', async () => {
    const files = paths(dir, true);
    const password = 'correct horse battery staple';
    // An `openssl` first on PATH that records its argv, then runs the real one.
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    const argvLog = join(dir, 'argv.log');
    const real = spawnSync('sh', ['-c', 'command -v openssl'], { encoding: 'utf8' }).stdout.trim();
    writeFileSync(join(bin, 'openssl'), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${argvLog}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path ?? ''}`;
    try {
      await writeIdentityFiles(files, identity, Secret.from(password));
    } finally {
      process.env.PATH = path;
    }
    const argv = readFileSync(argvLog, 'utf8');
    expect(argv).to.contain('pkcs12 -export').and.contain('-passout fd:3');
    expect(argv).to.not.contain('horse');
    expect(mode(files.pkcs12!.path)).to.equal(0o600);
    const passFile = join(dir, 'pass');
    writeFileSync(passFile, `${password}\n`, { mode: 0o600 });
    const info = spawnSync('openssl', ['pkcs12', '-in', files.pkcs12!.path, '-nodes', '-passin', `file:${passFile}`], { encoding: 'utf8' });
    expect(info.status, info.stderr).to.equal(0);
    expect(info.stdout).to.contain('BEGIN CERTIFICATE');
    expect(info.stdout).to.contain(SPIFFE_ID);
    const keyOnly = spawnSync('openssl', ['pkcs12', '-in', files.pkcs12!.path, '-nodes', '-nocerts', '-passin', `file:${passFile}`], { encoding: 'utf8' });
    expect(keyOnly.status, keyOnly.stderr).to.equal(0);
    expect(keyMatchesCertificate(keyOnly.stdout, identity.certificatePem), 'the bundle holds the key of the certificate').to.equal(true);
    const wrong = spawnSync('openssl', ['pkcs12', '-in', files.pkcs12!.path, '-nodes', '-passin', 'pass:wrong'], { encoding: 'utf8' });
    expect(wrong.status).to.not.equal(0);
  });
});
