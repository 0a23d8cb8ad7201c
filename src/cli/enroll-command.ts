/**
 * `credbroker enroll`: a service's or operator's first certificate. The key is generated here
 * and never sent; the join token comes from a 0600 file or an inherited fd and is deleted from
 * its file after a successful enrollment. Writes key (0600), certificate, chain and trust bundle.
 *
 * `credbroker bootstrap-operator` (on the broker host) mints the first operator's join token
 * straight from the broker's own store: it needs the same access as the broker, no network and
 * no secret on argv.
 */
import { readFileSync, unlinkSync } from 'node:fs';
import { join, resolve, dirname, isAbsolute } from 'node:path';
import { Command } from 'commander';
import { BrokerError, type Clock, type RandomSource } from '../core/index.js';
import { brokerConfigSchema, loadConfigFile, readSecret } from '../config/index.js';
import { enroll, newKeyAndCsr, writeFileAtomically } from '../agent/index.js';
import { mintJoinToken, openStore } from '../server/index.js';
import { parseSpiffeId } from '../pki/index.js';
import { AuditLog } from '../audit/index.js';
import { PolicyHolder, clampTtl } from '../policy/index.js';
import { addSecretFlags, secretSourceFromFlags } from './secret-flags.js';
import type { Output } from './output.js';

/** Builds the `enroll` command. */
export function enrollCommand(output: Output): Command {
  const command = new Command('enroll')
    .description('enroll with a single-use join token: generate a key here, get a certificate, write key (0600), certificate, chain and trust bundle')
    .requiredOption('--broker <host:port>', 'the broker address')
    .requiredOption('--trust-bundle <pem>', 'root certificate(s) that authenticate the broker')
    .requiredOption('--out <dir>', 'folder for key.pem, cert.pem, chain.pem, bundle.pem')
    .option('--server-name <name>', 'name to expect in the broker certificate (default: the host)')
    .option('--ttl <seconds>', 'requested lifetime in seconds (default: policy default)', '0');
  addSecretFlags(command, 'join-token', 'join token');
  return command.action(async (flags: Record<string, unknown> & { broker: string; trustBundle: string; out: string; serverName?: string; ttl: string }) => {
    const source = secretSourceFromFlags(flags, 'join-token', 'join token');
    if (source === undefined) throw new BrokerError('invalid', { code: 'cli.secret_missing', publicMessage: 'the join token is needed: give --join-token-file PATH (mode 0600) or --join-token-fd N' });
    const joinToken = await readSecret(source, { label: 'join token' });
    const { keyPem, csrDer } = await newKeyAndCsr();
    const enrolled = await enroll({
      address: flags.broker,
      trustBundlePem: readFileSync(flags.trustBundle, 'utf8'),
      joinToken,
      csrDer,
      ttlSeconds: Number(flags.ttl),
      ...(flags.serverName === undefined ? {} : { serverName: flags.serverName }),
    });
    joinToken.dispose();
    writeFileAtomically(join(flags.out, 'key.pem'), keyPem, 0o600);
    writeFileAtomically(join(flags.out, 'cert.pem'), enrolled.certificatePem, 0o644);
    writeFileAtomically(join(flags.out, 'chain.pem'), enrolled.chainPem, 0o644);
    writeFileAtomically(join(flags.out, 'bundle.pem'), enrolled.trustBundlePem, 0o644);
    if ('file' in source) unlinkSync(source.file); // spent: a used token file is only a liability
    output.line(`enrolled as ${enrolled.spiffeId}: certificate ${enrolled.serial} valid until ${new Date(enrolled.notAfterUnix * 1000).toISOString()}; files in ${flags.out}`);
  });
}

/** Builds the `bootstrap-operator` command. */
export function bootstrapCommand(output: Output, clock: Clock, random: RandomSource): Command {
  return new Command('bootstrap-operator')
    .description('on the broker host: mint a one-time join token for an operator identity from the broker\'s own store (no network)')
    .requiredOption('-c, --config <file>', 'the broker\'s config file (store and policy are read from it)')
    .requiredOption('--spiffe-id <id>', 'the operator identity, as named in the policy')
    .requiredOption('--out <file>', 'where to write the join token (a new file, mode 0600)')
    .option('--ttl <seconds>', 'lifetime in seconds (default 900)', '900')
    .action(async (flags: { config: string; spiffeId: string; out: string; ttl: string }) => {
      const config = loadConfigFile(flags.config, brokerConfigSchema);
      const base = dirname(resolve(flags.config));
      const path = (value: string): string => (isAbsolute(value) ? value : resolve(base, value));
      if (config.policy === undefined) throw new BrokerError('invalid', { code: 'config.policy', publicMessage: 'the config names no policy file' });
      const policy = PolicyHolder.load(path(config.policy)).current;
      const spiffeId = parseSpiffeId(flags.spiffeId).toString();
      if (policy.lookup(spiffeId)?.role !== 'operator') {
        throw new BrokerError('denied', { code: 'policy.not_operator', publicMessage: `${spiffeId} is not an operator in ${policy.source}` });
      }
      const ttlMs = clampTtl(Number(flags.ttl) * 1000, policy.joinTokens);
      const storeConfig = config.store ?? { kind: 'sqlite' as const, path: './credbroker.db' };
      const password = storeConfig.kind === 'postgres' && storeConfig.password !== undefined ? await readSecret(storeConfig.password, { label: 'PostgreSQL password' }) : null;
      const store = await openStore(storeConfig, { clock, resolvePath: path, password });
      try {
        const minted = mintJoinToken(random);
        const now = clock.now();
        const expiresAt = new Date(now.getTime() + ttlMs);
        const audit = new AuditLog();
        writeFileAtomically(resolve(flags.out), `${minted.token}\n`, 0o600);
        await store.transaction(async (tx) => {
          await tx.insertJoinToken({ id: minted.id, hash: minted.hash, spiffeId, createdBy: 'local:bootstrap-operator', createdAt: now, expiresAt, usedAt: null, usedForSerial: null });
          await audit.append(tx, { time: now, requestId: `local-${minted.id}`, actor: 'local:bootstrap-operator', action: 'CreateJoinToken', outcome: 'allowed', subject: spiffeId, reason: '', details: { tokenId: minted.id, ttlSeconds: Math.round(ttlMs / 1000) } });
        });
        output.line(`join token for ${spiffeId} (id ${minted.id}) written to ${resolve(flags.out)}, valid until ${expiresAt.toISOString()}`);
      } finally {
        await store.close();
      }
    });
}

