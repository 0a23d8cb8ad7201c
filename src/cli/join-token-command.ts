/**
 * `credbroker join-token`: an operator's CreateJoinToken without grpcurl and without the token
 * ever reaching a terminal: mutual TLS with the operator's certificate, and the token written to
 * a new file of mode 0600 (hand it to the service's deployment as a file or an fd).
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { connectBroker, unary } from '../agent/index.js';
import { writeNewFile } from '../ceremony/index.js';
import type { Output } from './output.js';

/** Builds the `join-token` command. */
export function joinTokenCommand(output: Output): Command {
  return new Command('join-token')
    .description('operators: create a single-use join token for a service identity and write it to a new 0600 file (CreateJoinToken over mutual TLS)')
    .requiredOption('--broker <host:port>', 'the broker address')
    .requiredOption('--trust-bundle <pem>', 'root certificate(s) that authenticate the broker')
    .requiredOption('--cert <pem>', 'the operator certificate (and chain)')
    .requiredOption('--key <pem>', 'the operator key (a 0600 file)')
    .requiredOption('--spiffe-id <id>', 'the identity the token enrolls, as named in the policy')
    .requiredOption('--out <file>', 'where to write the token (a new file, mode 0600)')
    .option('--ttl <seconds>', 'lifetime in seconds (default: policy default, 15 min)', '0')
    .option('--server-name <name>', 'name to expect in the broker certificate (default: the host)')
    .action(async (flags: { broker: string; trustBundle: string; cert: string; key: string; spiffeId: string; out: string; ttl: string; serverName?: string }) => {
      const clients = connectBroker({
        address: flags.broker,
        trustBundlePem: readFileSync(flags.trustBundle),
        clientKeyPem: readFileSync(flags.key),
        clientCertificateChainPem: readFileSync(flags.cert),
        ...(flags.serverName === undefined ? {} : { serverName: flags.serverName }),
      });
      try {
        const created = await unary<{ joinToken: string; tokenId: string; expiresAtUnix: number }>(clients.administration, 'CreateJoinToken', {
          spiffeId: flags.spiffeId,
          ttlSeconds: Number(flags.ttl),
        });
        await writeNewFile(flags.out, `${created.joinToken}\n`, 0o600, 'join token file');
        output.line(`join token ${created.tokenId} for ${flags.spiffeId} written to ${flags.out} (mode 0600), single use, valid until ${new Date(created.expiresAtUnix * 1000).toISOString()}`);
      } finally {
        clients.close();
      }
    });
}
