/**
 * `credbroker hsm`: tokens, init-token, keygen, keys, selftest. A security officer's tool at
 * the HSM; every PIN comes from a secret source (file, fd, prompt), never argv.
 */
import { performance } from 'node:perf_hooks';
import { Command, Option } from 'commander';
import { BrokerError, KEY_TYPES, verifySignature, type KeyType, type Logger } from '../core/index.js';
import { brokerConfigSchema, loadConfigFile, readSecret } from '../config/index.js';
import { HsmSigner, HsmToken, hsmTokenOptions, initToken, listTokens, type HsmTokenOptions } from '../hsm/index.js';
import { addSecretFlags, readSecretFromFlags } from './secret-flags.js';
import type { Output } from './output.js';

interface TokenFlags {
  config?: string;
  token?: string;
  module?: string;
  pinFile?: string;
  pinFd?: string;
  pinPrompt?: boolean;
}

/** Adds the flags that choose a token and its PIN: `--config FILE`, or `--token` with PIN flags. */
function tokenOptions(command: Command): Command {
  command
    .option('-c, --config <file>', 'broker config file; its hsm section names the module, token and PIN source')
    .option('--token <label>', 'token label (instead of --config)')
    .option('--module <path>', 'PKCS#11 module (default: search the usual SoftHSM locations)');
  return addSecretFlags(command, 'pin', 'HSM user PIN');
}

/** Opens the token the flags name. */
async function openToken(flags: TokenFlags, logger: Logger, extra: Partial<HsmTokenOptions> = {}): Promise<HsmToken> {
  let options: HsmTokenOptions;
  if (flags.config !== undefined) {
    if (flags.token !== undefined) {
      throw new BrokerError('invalid', { code: 'cli.usage', publicMessage: 'give either --config or --token, not both' });
    }
    const config = loadConfigFile(flags.config, brokerConfigSchema);
    const pin = await readSecret(config.hsm.pin, { label: 'HSM user PIN' });
    options = hsmTokenOptions(config.hsm, pin);
  } else {
    if (flags.token === undefined) {
      throw new BrokerError('invalid', { code: 'cli.usage', publicMessage: 'choose a token: --config FILE or --token LABEL (see `credbroker hsm tokens`)' });
    }
    const pin = await readSecretFromFlags(flags as Record<string, unknown>, 'pin', 'HSM user PIN');
    options = { modulePath: flags.module, tokenLabel: flags.token, pin };
  }
  return HsmToken.open({ ...options, ...extra, logger });
}

function parseKeyType(value: string): KeyType {
  if ((KEY_TYPES as readonly string[]).includes(value)) return value as KeyType;
  throw new BrokerError('invalid', {
    code: 'cli.key_type',
    publicMessage: `unsupported key type "${value}": choose one of ${KEY_TYPES.join(', ')}`,
  });
}

const yesNo = (flag: boolean): string => (flag ? 'yes' : 'no');

/** Builds the `hsm` command group. */
export function hsmCommand(output: Output, logger: Logger): Command {
  const hsm = new Command('hsm').description('inspect and prepare PKCS#11 tokens and keys (security officers)');

  hsm
    .command('tokens')
    .description('list the tokens the PKCS#11 module shows (by label; slot numbers are informative only)')
    .option('--module <path>', 'PKCS#11 module (default: search the usual SoftHSM locations)')
    .option('--json', 'print JSON')
    .action((flags: { module?: string; json?: boolean }) => {
      const tokens = listTokens(flags.module);
      if (flags.json === true) {
        output.json(tokens);
        return;
      }
      output.table(
        ['label', 'initialised', 'user PIN', 'manufacturer', 'model', 'serial'],
        tokens.map((t) => [
          t.label === '' ? '(free)' : t.label,
          yesNo(t.initialized),
          t.userPinLocked ? 'LOCKED' : t.userPinFinalTry ? 'final try' : t.userPinCountLow ? 'count low' : t.userPinInitialized ? 'set' : 'not set',
          t.manufacturer,
          t.model,
          t.serialNumber,
        ]),
      );
    });

  const init = hsm
    .command('init-token')
    .description('initialise a free token with a label, a security officer PIN and a user PIN (never re-initialises a token in use)')
    .requiredOption('--label <label>', 'label of the new token (1 to 32 characters)')
    .option('--module <path>', 'PKCS#11 module (default: search the usual SoftHSM locations)');
  addSecretFlags(init, 'so-pin', 'security officer PIN');
  addSecretFlags(init, 'pin', 'user PIN');
  init.action(async (flags: Record<string, unknown> & { label: string; module?: string }) => {
    const soPin = await readSecretFromFlags(flags, 'so-pin', 'security officer PIN');
    const userPin = await readSecretFromFlags(flags, 'pin', 'user PIN');
    try {
      const summary = initToken({ modulePath: flags.module, label: flags.label, soPin, userPin });
      output.line(`initialised token "${summary.label}" (serial ${summary.serialNumber}); user PIN set`);
    } finally {
      soPin.dispose();
      userPin.dispose();
    }
  });

  tokenOptions(
    hsm
      .command('keygen')
      .description('generate a sensitive, non-extractable key pair on the token (refuses an existing label)')
      .requiredOption('--label <label>', 'label of the new key')
      .addOption(new Option('--type <type>', 'key type').choices([...KEY_TYPES]).default('P-256')),
  ).action(async (flags: TokenFlags & { label: string; type: string }) => {
    const keyType = parseKeyType(flags.type);
    const token = await openToken(flags, logger);
    try {
      const info = await token.generateKeyPair({ label: flags.label, keyType });
      output.line(`generated ${keyType} key "${info.label}" on token "${token.label}"`);
      output.line(`  id ${info.id}  sensitive ${yesNo(info.sensitive)}  extractable ${yesNo(info.extractable)}  spki sha256 ${info.spkiSha256 ?? '-'}`);
    } finally {
      await token.close();
    }
  });

  tokenOptions(hsm.command('keys').description('list the private keys on the token with their protection attributes'))
    .option('--json', 'print JSON')
    .action(async (flags: TokenFlags & { json?: boolean }) => {
      const token = await openToken(flags, logger);
      try {
        const keys = await token.listKeys();
        if (flags.json === true) {
          output.json(keys.map(({ publicKey: _publicKey, ...rest }) => rest));
          return;
        }
        output.table(
          ['label', 'type', 'id', 'sensitive', 'extractable', 'always sensitive', 'never extractable', 'spki sha256'],
          keys.map((k) => [k.label, k.keyType ?? 'other', k.id, yesNo(k.sensitive), yesNo(k.extractable), yesNo(k.alwaysSensitive), yesNo(k.neverExtractable), k.spkiSha256 ?? '-']),
        );
      } finally {
        await token.close();
      }
    });

  tokenOptions(hsm.command('selftest').description('known-answer test: sign and verify with every key, report latency and unsafe attributes'))
    .option('--count <n>', 'signatures per key (1 to 1000)', '20')
    .option('--json', 'print JSON')
    .action(async (flags: TokenFlags & { count: string; json?: boolean }) => {
      const count = Number(flags.count);
      if (!Number.isInteger(count) || count < 1 || count > 1000) {
        throw new BrokerError('invalid', { code: 'cli.usage', publicMessage: `--count must be an integer from 1 to 1000, got "${flags.count}"` });
      }
      const token = await openToken(flags, logger);
      const results: { label: string; keyType: string; ok: boolean; problem: string; p50Ms: number; maxMs: number }[] = [];
      try {
        const keys = await token.listKeys();
        if (keys.length === 0) output.line(`token "${token.label}" holds no private keys`);
        for (const key of keys) {
          results.push(await selfTestKey(token, key.label, key.sensitive && !key.extractable, count));
        }
      } finally {
        await token.close();
      }
      if (flags.json === true) output.json(results);
      else {
        output.table(
          ['key', 'type', 'result', 'p50 ms', 'max ms'],
          results.map((r) => [r.label, r.keyType, r.ok ? 'ok' : `FAIL: ${r.problem}`, r.p50Ms.toFixed(3), r.maxMs.toFixed(3)]),
        );
      }
      const failed = results.filter((r) => !r.ok).length;
      output.line(`selftest: ${results.length - failed} of ${results.length} keys passed`);
      if (failed > 0) process.exitCode = 1;
    });

  return hsm;
}

async function selfTestKey(
  token: HsmToken,
  label: string,
  protectedKey: boolean,
  count: number,
): Promise<{ label: string; keyType: string; ok: boolean; problem: string; p50Ms: number; maxMs: number }> {
  const message = Buffer.from(`credbroker selftest: known message for key ${label}`);
  const latencies: number[] = [];
  let signer: HsmSigner;
  try {
    signer = await HsmSigner.create(token, label);
  } catch (error) {
    return { label, keyType: '-', ok: false, problem: error instanceof BrokerError ? error.publicMessage : String(error), p50Ms: 0, maxMs: 0 };
  }
  let problem = protectedKey ? '' : 'key is extractable or not sensitive';
  for (let i = 0; i < count && problem === ''; i++) {
    const start = performance.now();
    try {
      const signature = await signer.sign(message);
      latencies.push(performance.now() - start);
      // Checked again here, independently of the signer's own verify-after-sign.
      if (!verifySignature(signer.algorithm, signer.publicKey, message, signature)) problem = 'signature does not verify';
      const tampered = Buffer.from(message);
      tampered[0] = (tampered[0] ?? 0) ^ 1;
      if (verifySignature(signer.algorithm, signer.publicKey, tampered, signature)) problem = 'signature verifies over a different message';
    } catch (error) {
      problem = error instanceof BrokerError ? error.publicMessage : String(error);
    }
  }
  latencies.sort((a, b) => a - b);
  return {
    label,
    keyType: signer.keyType,
    ok: problem === '',
    problem,
    p50Ms: latencies[Math.floor(latencies.length / 2)] ?? 0,
    maxMs: latencies[latencies.length - 1] ?? 0,
  };
}

