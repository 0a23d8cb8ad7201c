import { expect } from 'chai';
import { EventEmitter } from 'node:events';
import { SecretSourceError, TerminalPromptIo } from '../../../src/config/index.js';

/** Enough of a TTY read stream for the prompt: raw-mode switch, data and end events. */
class FakeTty extends EventEmitter {
  isTTY = true;
  isRaw = false;
  rawModeCalls: boolean[] = [];
  paused = true;
  setRawMode(mode: boolean): this {
    this.rawModeCalls.push(mode);
    this.isRaw = mode;
    return this;
  }
  resume(): this {
    this.paused = false;
    return this;
  }
  pause(): this {
    this.paused = true;
    return this;
  }
  type(...chunks: (string | Buffer)[]): void {
    for (const chunk of chunks) this.emit('data', typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
  }
}

class FakeOutput {
  text = '';
  write(text: string): boolean {
    this.text += text;
    return true;
  }
}

describe('config/terminal-prompt-io', () => {
  let input: FakeTty;
  let output: FakeOutput;
  let io: TerminalPromptIo;

  beforeEach(() => {
    input = new FakeTty();
    output = new FakeOutput();
    io = new TerminalPromptIo({ input, output });
  });

  it('is a TTY only when the input is one and can switch to raw mode', () => {
    expect(io.isTty).to.equal(true);
    input.isTTY = false;
    expect(io.isTty).to.equal(false);
    const noRawMode = { isTTY: true, on: () => undefined, removeListener: () => undefined, resume: () => 0, pause: () => 0 };
    expect(new TerminalPromptIo({ input: noRawMode, output }).isTty).to.equal(false);
  });

  it('writes the prompt to the output', () => {
    io.write('HSM user PIN: ');
    expect(output.text).to.equal('HSM user PIN: ');
  });

  describe('readHidden', () => {
    const lines: [string, (string | Buffer)[], string][] = [
      ['a line ended by Enter (CR)', ['1234\r'], '1234'],
      ['a line ended by LF', ['1234\n'], '1234'],
      ['a line ended by Ctrl-D', ['1234\u0004'], '1234'],
      ['typed key by key', ['1', '2', '3', '4', '\r'], '1234'],
      ['backspace (DEL) deletes one character', ['12x\u007f34\r'], '1234'],
      ['backspace (BS) deletes one character', ['12x\b34\r'], '1234'],
      ['backspace on an empty line does nothing', ['\u007f\u007f1234\r'], '1234'],
      ['Ctrl-U clears the line', ['wrong\u001534\r'], '34'],
      ['arrow keys are ignored', ['12\u001b[D34\u001b[A\r'], '1234'],
      ['other control characters are ignored', ['12\t\u000134\r'], '1234'],
      ['UTF-8 split across chunks', [Buffer.from([0x70, 0xc3]), Buffer.from([0xa9, 0x0d])], 'pé'],
      ['text after Enter is not part of the line', ['1234\rmore'], '1234'],
    ];
    for (const [name, chunks, expected] of lines) {
      it(name, async () => {
        const line = io.readHidden();
        input.type(...chunks);
        expect(await line).to.equal(expected);
      });
    }

    it('reads in raw mode (no echo) and restores the mode and pauses afterwards', async () => {
      const line = io.readHidden();
      expect(input.isRaw).to.equal(true);
      expect(input.paused).to.equal(false);
      input.type('s3cret\r');
      await line;
      expect(input.rawModeCalls).to.deep.equal([true, false]);
      expect(input.isRaw).to.equal(false);
      expect(input.paused).to.equal(true);
      expect(input.listenerCount('data')).to.equal(0);
      expect(input.listenerCount('end')).to.equal(0);
      // Nothing typed is echoed: only the newline that Enter would have printed.
      expect(output.text).to.equal('\n');
    });

    it('keeps raw mode on if it was on before', async () => {
      input.isRaw = true;
      const line = io.readHidden();
      input.type('x\r');
      await line;
      expect(input.rawModeCalls).to.deep.equal([true, true]);
    });

    it('Ctrl-C rejects with secret.prompt_cancelled and restores the terminal', async () => {
      const line = io.readHidden();
      input.type('12\u0003');
      try {
        await line;
        expect.fail('expected a rejection');
      } catch (error) {
        expect(error).to.be.instanceOf(SecretSourceError);
        expect((error as SecretSourceError).code).to.equal('secret.prompt_cancelled');
        expect((error as SecretSourceError).message).to.include('Ctrl-C');
      }
      expect(input.isRaw).to.equal(false);
      expect(input.listenerCount('data')).to.equal(0);
    });

    it('the input ending before Enter rejects', async () => {
      const line = io.readHidden();
      input.type('12');
      input.emit('end');
      try {
        await line;
        expect.fail('expected a rejection');
      } catch (error) {
        expect((error as SecretSourceError).code).to.equal('secret.prompt_cancelled');
      }
    });
  });
});
