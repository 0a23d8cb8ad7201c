/**
 * `credbroker ceremony`: run a key ceremony from a plan file at the HSM, and verify a ceremony
 * transcript offline. For security officers.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import * as x509 from '@peculiar/x509';
import { BrokerError, publicKeyFromSpki, type Clock, type Logger, type RandomSource } from '../core/index.js';
import { runCeremony, verifyTranscript } from '../ceremony/index.js';
import type { Output } from './output.js';

/** Builds the `ceremony` command group. */
export function ceremonyCommand(output: Output, logger: Logger, clock: Clock, random: RandomSource): Command {
  const ceremony = new Command('ceremony').description('key ceremonies at the HSM from a declarative plan, and offline transcript verification');

  ceremony
    .command('run')
    .description('validate a ceremony plan completely, then run it: root and intermediate keys, certificates, CRL, signed transcript')
    .argument('<plan>', 'ceremony plan (YAML), e.g. pki/ceremonies/dev.yaml')
    .option('--out <dir>', 'folder for the plan\'s relative paths (default: the plan\'s folder)')
    .option('--dry-run', 'validate the plan and print the steps; touch no HSM, write nothing')
    .action(async (plan: string, flags: { out?: string; dryRun?: boolean }) => {
      await runCeremony(plan, { outDir: flags.out, dryRun: flags.dryRun === true }, {
        clock,
        random,
        logger,
        print: (line) => {
          output.line(line);
        },
      });
    });

  ceremony
    .command('verify')
    .description('check a ceremony transcript offline: hash chain and signature; names the first bad line')
    .argument('<transcript>', 'transcript file (JSON lines)')
    .option('--root-cert <pem>', 'the root certificate whose key must have signed the transcript (recommended)')
    .option('--json', 'print JSON')
    .action((path: string, flags: { rootCert?: string; json?: boolean }) => {
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (error) {
        throw new BrokerError('invalid', { code: 'ceremony.transcript_unreadable', publicMessage: `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})` });
      }
      const publicKey = flags.rootCert === undefined ? undefined : publicKeyFromSpki(new Uint8Array(new x509.X509Certificate(readFileSync(flags.rootCert)).publicKey.rawData));
      const result = verifyTranscript(text, publicKey === undefined ? {} : { publicKey });
      if (flags.json === true) {
        output.json({ ok: result.ok, lines: result.lines, badLine: result.badLine ?? null, reason: result.reason ?? null, signed: result.signed, publicKeySha256: result.publicKeySha256 ?? null });
      } else if (result.ok) {
        output.line(`transcript ok: ${result.lines} lines, hash chain intact, signed by key sha256 ${result.publicKeySha256 ?? '?'}`);
        if (flags.rootCert === undefined) output.line('note: the signature was checked against the key named in the transcript; pass --root-cert to check it is your root');
      } else {
        output.error(`transcript INVALID at line ${result.badLine ?? '?'}: ${result.reason ?? 'unknown reason'}`);
      }
      if (!result.ok) process.exitCode = 1;
    });

  return ceremony;
}

