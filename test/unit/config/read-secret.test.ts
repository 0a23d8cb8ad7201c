import { expect } from 'chai';
import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  constants,
  fstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BrokerError, isBrokerError, type Secret } from '../../../src/core/index.js';
import {
  MAX_SECRET_BYTES,
  readSecret,
  SecretSourceError,
  type PromptIo,
  type SecretSourceErrorCode,
} from '../../../src/config/index.js';

const repoRoot = join(import.meta.dirname, '..', '..', '..');

/** Awaits `promise`, expects a SecretSourceError with `code` and returns it. */
async function secretError(promise: Promise<unknown>, code: SecretSourceErrorCode): Promise<SecretSourceError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(SecretSourceError);
    const failure = error as SecretSourceError;
    expect(failure.code, failure.message).to.equal(code);
    expect(failure.kind).to.equal('invalid');
    expect(failure.retryable).to.equal(false);
    return failure;
  }
  expect.fail(`expected a SecretSourceError ${code}`);
}

function revealed(secret: Secret): string {
  return secret.reveal((v) => v);
}

/** A PromptIo that records what is written and answers with a fixed line. */
class FakePromptIo implements PromptIo {
  written: string[] = [];
  reads = 0;
  constructor(
    readonly isTty: boolean,
    private readonly answer: () => Promise<string>,
  ) {}
  write(text: string): void {
    this.written.push(text);
  }
  readHidden(): Promise<string> {
    this.reads++;
    return this.answer();
  }
}

describe('config/read-secret', () => {
  // Fresh per run: "never in a message" cannot pass by luck.
  const value = `pin-${randomBytes(6).toString('hex')}`;
  let dir: string;
  let counter = 0;

  /** A new file in the temp dir holding `data`, created with `mode` (never chmod-ed wider first). */
  function secretFile(data: string | Buffer, mode = 0o600): string {
    const file = join(dir, `secret-${++counter}.pin`);
    writeFileSync(file, data, { mode });
    chmodSync(file, mode); // the umask may have cleared bits the test wants (e.g. 0644 under 077)
    return file;
  }

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'credbroker-secret-'));
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  describe('file', () => {
    for (const mode of [0o600, 0o400, 0o700]) {
      it(`accepts mode 0${mode.toString(8)}`, async () => {
        const file = secretFile(`${value}\n`, mode);
        const secret = await readSecret({ file });
        expect(revealed(secret)).to.equal(value);
        expect(secret.source).to.equal(`file:${file}`);
      });
    }

    for (const mode of [0o644, 0o640, 0o604, 0o660, 0o610, 0o666]) {
      const octal = `0${mode.toString(8)}`;
      it(`refuses mode ${octal}, naming the file and the mode`, async () => {
        const file = secretFile(value, mode);
        const error = await secretError(readSecret({ file }, { label: 'PIN' }), 'secret.file_mode');
        expect(error.message).to.equal(
          `PIN file ${file} has mode ${octal}; it must be 0600 or stricter (chmod 600 ${file})`,
        );
        expect(error.source).to.equal(`file:${file}`);
        expect(error.message).not.to.include(value);
      });
    }

    it('refuses a directory', async () => {
      const sub = join(dir, 'a-directory');
      mkdirSync(sub, { mode: 0o700 });
      const error = await secretError(readSecret({ file: sub }, { label: 'HSM user PIN' }), 'secret.not_regular');
      expect(error.message).to.equal(`HSM user PIN file ${sub} is a directory, not a regular file`);
    });

    it('refuses a FIFO without hanging on open', async () => {
      const fifo = join(dir, 'a-fifo');
      execFileSync('mkfifo', ['-m', '600', fifo]);
      const error = await secretError(readSecret({ file: fifo }), 'secret.not_regular');
      expect(error.message).to.include(fifo).and.include('is a FIFO');
    });

    it('refuses a file owned by another user', async () => {
      let file: string;
      if (process.getuid?.() === 0) {
        file = secretFile(value);
        chownSync(file, 65534, 65534);
      } else {
        file = '/etc/passwd'; // readable by all, owned by root
      }
      const error = await secretError(readSecret({ file }, { label: 'PIN' }), 'secret.file_owner');
      expect(error.message).to.include(`PIN file ${file} is owned by uid`).and.include('chown');
    });

    it('a missing file: names the file and the OS reason, not "login failed"', async () => {
      const file = join(dir, 'missing.pin');
      const error = await secretError(readSecret({ file }, { label: 'HSM user PIN' }), 'secret.unreadable');
      expect(error.message).to.equal(`cannot read HSM user PIN file ${file}: no such file or directory (ENOENT)`);
      expect((error.cause as NodeJS.ErrnoException).code).to.equal('ENOENT');
    });

    it('a path through a non-directory: names the OS reason', async () => {
      const file = join(secretFile(value), 'below');
      const error = await secretError(readSecret({ file }), 'secret.unreadable');
      expect(error.message).to.include(file).and.include('(ENOTDIR)');
    });

    it('follows a symlink to a 0600 file, and checks the target, not the link', async () => {
      const target = secretFile(value);
      const link = join(dir, `link-${++counter}`);
      symlinkSync(target, link);
      expect(revealed(await readSecret({ file: link }))).to.equal(value);

      const open = secretFile(value, 0o644);
      const badLink = join(dir, `link-${++counter}`);
      symlinkSync(open, badLink);
      const error = await secretError(readSecret({ file: badLink }), 'secret.file_mode');
      expect(error.message).to.include('mode 0644');
    });

    it('resolves a relative path against the working directory and reports it absolute', async () => {
      const file = secretFile(value);
      const secret = await readSecret({ file: relative(process.cwd(), file) });
      expect(revealed(secret)).to.equal(value);
      expect(secret.source).to.equal(`file:${file}`);
    });

    describe('strips exactly one trailing newline', () => {
      const cases: [string, string, string][] = [
        ['no newline', 'abc', 'abc'],
        ['\\n', 'abc\n', 'abc'],
        ['\\r\\n', 'abc\r\n', 'abc'],
        ['two \\n: one stays', 'abc\n\n', 'abc\n'],
        ['inner newline kept', 'a\nb\n', 'a\nb'],
        ['a lone \\r stays', 'abc\r', 'abc\r'],
        ['spaces are part of the secret', ' abc \n', ' abc '],
      ];
      for (const [name, content, expected] of cases) {
        it(name, async () => {
          expect(revealed(await readSecret({ file: secretFile(content) }))).to.equal(expected);
        });
      }
    });

    for (const [name, content] of [
      ['empty', ''],
      ['only a newline', '\n'],
      ['only \\r\\n', '\r\n'],
    ] as const) {
      it(`refuses an ${name} file, naming it`, async () => {
        const file = secretFile(content);
        const error = await secretError(readSecret({ file }, { label: 'PIN' }), 'secret.empty');
        expect(error.message).to.equal(`the PIN from file ${file} is empty`);
      });
    }

    it(`accepts ${MAX_SECRET_BYTES} bytes and refuses more`, async () => {
      const max = 'x'.repeat(MAX_SECRET_BYTES);
      expect((await readSecret({ file: secretFile(max) })).byteLength).to.equal(MAX_SECRET_BYTES);
      const file = secretFile(`${max}y`);
      const error = await secretError(readSecret({ file }), 'secret.too_large');
      expect(error.message).to.include(file).and.include(`larger than ${MAX_SECRET_BYTES} bytes`);
    });

    it('keeps binary content byte for byte', async () => {
      const bytes = Buffer.from([0x00, 0xff, 0x10, 0x80]);
      const secret = await readSecret({ file: secretFile(bytes) });
      expect(secret.revealBytes((b) => Buffer.from(b).equals(bytes))).to.equal(true);
    });
  });

  describe('fd', () => {
    it('reads an fd opened on a file (>= 3), strips the newline and closes it', async () => {
      const fd = openSync(secretFile(`${value}\n`), 'r');
      expect(fd).to.be.at.least(3);
      const secret = await readSecret({ fd });
      expect(revealed(secret)).to.equal(value);
      expect(secret.source).to.equal(`fd:${fd}`);
      expect(() => fstatSync(fd)).to.throw(/EBADF/);
    });

    it('reads a FIFO to its end', async () => {
      const fifo = join(dir, `fifo-${++counter}`);
      execFileSync('mkfifo', ['-m', '600', fifo]);
      // Reader first (non-blocking open), then the writer, which gives the data and leaves.
      const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
      const writer = openSync(fifo, constants.O_WRONLY);
      writeSync(writer, `${value}\r\n`);
      closeSync(writer);
      const secret = await readSecret({ fd: reader });
      expect(revealed(secret)).to.equal(value);
      expect(() => fstatSync(reader)).to.throw(/EBADF/);
    });

    it('an empty fd is refused, naming it', async () => {
      const fd = openSync(secretFile(''), 'r');
      const error = await secretError(readSecret({ fd }, { label: 'join token' }), 'secret.empty');
      expect(error.message).to.equal(`the join token from file descriptor ${fd} is empty`);
    });

    it('a descriptor that is not open: names it and the OS reason', async () => {
      const fd = 987_654;
      const error = await secretError(readSecret({ fd }, { label: 'PIN' }), 'secret.unreadable');
      expect(error.message).to.include(`file descriptor ${fd}`).and.include('(EBADF)');
      expect(error.source).to.equal(`fd:${fd}`);
    });

    for (const fd of [0, 1, 2, -1, 3.5]) {
      it(`refuses fd ${fd} without touching it`, async () => {
        const error = await secretError(readSecret({ fd }), 'secret.unreadable');
        expect(error.message).to.include(`file descriptor ${fd}`).and.include('>= 3');
      });
    }

    it('reads a real inherited pipe in a child process (and refuses an oversized one)', async () => {
      // The child reads fd 3 and fd 4, pipes set up by spawn exactly as a supervisor would; it
      // prints a hash, never the value. The value travels only through the pipe, never argv.
      const configUrl = pathToFileURL(join(repoRoot, 'src/config/index.ts')).href;
      const script = `
        import { createHash } from 'node:crypto';
        import { fstatSync } from 'node:fs';
        const { readSecret } = await import(${JSON.stringify(configUrl)});
        const secret = await readSecret({ fd: 3 });
        const sha256 = secret.revealBytes((b) => createHash('sha256').update(b).digest('hex'));
        let closed = false;
        try { fstatSync(3); } catch { closed = true; }
        let oversized = '';
        try { await readSecret({ fd: 4 }); } catch (error) { oversized = error.code; }
        process.stdout.write(JSON.stringify({ source: secret.source, sha256, closed, oversized }));
      `;
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', script], {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
      });
      const [, , , pipe3, pipe4] = child.stdio as unknown as NodeJS.WritableStream[];
      if (pipe3 === undefined || pipe4 === undefined) expect.fail('spawn made no pipes for fd 3 and 4');
      pipe3.end(`${value}\n`);
      pipe4.end(Buffer.alloc(MAX_SECRET_BYTES * 3, 0x61));
      let stdout = '';
      let stderr = '';
      child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(code, stderr).to.equal(0);
      expect(JSON.parse(stdout)).to.deep.equal({
        source: 'fd:3',
        sha256: createHash('sha256').update(value).digest('hex'),
        closed: true,
        oversized: 'secret.too_large',
      });
    });
  });

  describe('prompt', () => {
    it('without a terminal: says to use a file or an fd, and reads nothing', async () => {
      const io = new FakePromptIo(false, () => Promise.resolve(value));
      const error = await secretError(
        readSecret({ prompt: 'HSM user PIN: ' }, { label: 'HSM user PIN', prompt: io }),
        'secret.no_tty',
      );
      expect(error.message).to.equal(
        'cannot prompt for the HSM user PIN: there is no terminal (stdin is not a TTY); ' +
          'give it as { file: <path to a 0600 file> } or { fd: <n> } instead',
      );
      expect(io.reads).to.equal(0);
      expect(io.written).to.deep.equal([]);
    });

    it('with a terminal: writes the prompt (never the value) and returns the line', async () => {
      const io = new FakePromptIo(true, () => Promise.resolve(value));
      const secret = await readSecret({ prompt: 'HSM user PIN: ' }, { prompt: io });
      expect(revealed(secret)).to.equal(value);
      expect(secret.source).to.equal('prompt');
      expect(io.written).to.deep.equal(['HSM user PIN: ']);
      expect(io.written.join('')).not.to.include(value);
    });

    it('adds a space after a prompt that does not end in one', async () => {
      const io = new FakePromptIo(true, () => Promise.resolve(value));
      await readSecret({ prompt: 'PIN:' }, { prompt: io });
      expect(io.written).to.deep.equal(['PIN: ']);
    });

    it('refuses an empty answer', async () => {
      const io = new FakePromptIo(true, () => Promise.resolve(''));
      const error = await secretError(readSecret({ prompt: 'PIN: ' }, { label: 'PIN', prompt: io }), 'secret.empty');
      expect(error.message).to.equal('the PIN from the prompt is empty');
    });

    it('passes a BrokerError from the terminal through (e.g. Ctrl-C)', async () => {
      const cancelled = new SecretSourceError('secret.prompt_cancelled', 'prompt', 'secret prompt cancelled (Ctrl-C)');
      const io = new FakePromptIo(true, () => Promise.reject(cancelled));
      try {
        await readSecret({ prompt: 'PIN: ' }, { prompt: io });
        expect.fail('expected a rejection');
      } catch (error) {
        expect(error).to.equal(cancelled);
      }
    });

    it('wraps any other terminal failure', async () => {
      const io = new FakePromptIo(true, () => Promise.reject(new Error('EIO: i/o error, read')));
      const error = await secretError(readSecret({ prompt: 'PIN: ' }, { prompt: io }), 'secret.prompt_cancelled');
      expect(error.message).to.include('prompt for the secret failed');
      expect(isBrokerError(error.cause)).to.equal(false);
      expect(error).to.be.instanceOf(BrokerError);
    });
  });
});
