import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Secret, systemRandom } from '../../../src/core/index.js';
import { readSecret } from '../../../src/config/index.js';
import { combineShares, parseShare, splitSecret } from '../../../src/ceremony/quorum.js';
import { SHARE_FILE_MODE, writeShareFile } from '../../../src/ceremony/share-file.js';
import { brokerError } from './helpers.js';

describe('ceremony/share-file', () => {
  let directory: string;
  let texts: string[];
  const pin = randomBytes(16).toString('hex');

  before(async () => {
    texts = await splitSecret(Secret.from(pin), { shares: 3, threshold: 2 }, systemRandom);
  });

  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), 'credbroker-share-file-'));
  });

  afterEach(() => {
    rmSync(directory, { recursive: true, force: true });
  });

  it('writes the share and a newline, mode 0600 whatever the umask', async () => {
    const previous = process.umask(0o000);
    const path = join(directory, 'alice.share');
    try {
      await writeShareFile(path, texts[0]!);
    } finally {
      process.umask(previous);
    }
    expect(SHARE_FILE_MODE).to.equal(0o600);
    expect(statSync(path).mode & 0o7777).to.equal(0o600);
    expect(readFileSync(path, 'utf8')).to.equal(`${texts[0]!}\n`);
  });

  it('round trip: readSecret (0600 check) and parseShare, then combine', async () => {
    const paths = [join(directory, 'alice.share'), join(directory, 'bob.share')];
    await writeShareFile(paths[0]!, texts[0]!);
    await writeShareFile(paths[1]!, texts[2]!);
    const shares = [];
    for (const path of paths) {
      const secret = await readSecret({ file: path }, { label: 'root PIN share' });
      shares.push(secret.reveal((text) => parseShare(text, secret.source)));
      secret.dispose();
    }
    expect(shares[0]!.source).to.equal(`file:${paths[0]!}`);
    expect((await combineShares(shares)).reveal((value) => value)).to.equal(pin);
  });

  it('refuses an existing file, naming it, and leaves it untouched', async () => {
    const path = join(directory, 'bob.share');
    writeFileSync(path, 'precious\n', { mode: 0o600 });
    const error = await brokerError(() => writeShareFile(path, texts[1]!), 'ceremony.output_exists');
    expect(error.kind).to.equal('conflict');
    expect(error.publicMessage).to.include(path);
    expect(readFileSync(path, 'utf8')).to.equal('precious\n');
  });

  it('refuses a symlink at the path, even a dangling one', async () => {
    const target = join(directory, 'elsewhere');
    const path = join(directory, 'carol.share');
    symlinkSync(target, path);
    await brokerError(() => writeShareFile(path, texts[2]!), 'ceremony.output_exists');
    expect(existsSync(target)).to.equal(false);
  });

  it('names the file and the reason when it cannot be created', async () => {
    const path = join(directory, 'missing-dir', 'dave.share');
    const error = await brokerError(() => writeShareFile(path, texts[0]!), 'ceremony.output_failed');
    expect(error.publicMessage).to.include(path).and.include('ENOENT');
  });

  it('refuses text that is not a share, and creates nothing', async () => {
    const path = join(directory, 'eve.share');
    const text = texts[0]!;
    const typo = `${text.slice(0, -1)}${text.endsWith('a') ? 'b' : 'a'}`;
    await brokerError(() => writeShareFile(path, typo), 'ceremony.share_invalid');
    expect(existsSync(path)).to.equal(false);
  });
});
