/**
 * A throwaway CA in memory for the issue benchmark: a self-signed P-256 root and leaves signed
 * by it, made with @peculiar/x509 over node's WebCrypto. It gives the echo server and its
 * clients their mutual-TLS certificates, and `cfssl serve` its software CA key. Nothing of it is
 * the broker's, and nothing outlives the run except what a caller writes to a temp directory.
 */
import { createPrivateKey, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;
/** Validity of everything made here: the run plus clock skew. */
const VALIDITY_MS = 24 * 3600 * 1000;
const BACKDATE_MS = 5 * 60 * 1000;

/** A key and certificate, PEM. */
export interface PemPair {
  readonly keyPem: string;
  readonly certificatePem: string;
}

/** The throwaway CA. */
export interface ThrowawayCa extends PemPair {
  /** Issues a P-256 leaf for TLS: `server` gets serverAuth and the SANs, else clientAuth. */
  issue(options: { commonName: string; server: boolean; dnsNames?: readonly string[]; ipAddresses?: readonly string[] }): Promise<PemPair>;
}

async function pkcs8Pem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }).toString();
}

function newKeys(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']);
}

/** Makes a root CA (P-256, 24 h) whose key stays in memory. */
export async function createThrowawayCa(commonName = 'credbroker bench throwaway CA'): Promise<ThrowawayCa> {
  const now = Date.now();
  const notBefore = new Date(now - BACKDATE_MS);
  const notAfter = new Date(now + VALIDITY_MS);
  const rootKeys = await newKeys();
  const root = await x509.X509CertificateGenerator.createSelfSigned(
    {
      name: `CN=${commonName}`,
      keys: rootKeys,
      signingAlgorithm: SIGNING,
      notBefore,
      notAfter,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey, false, webcrypto),
      ],
    },
    webcrypto,
  );
  return {
    keyPem: await pkcs8Pem(rootKeys.privateKey),
    certificatePem: `${root.toString('pem')}\n`,
    issue: async ({ commonName: name, server, dnsNames = [], ipAddresses = [] }) => {
      const keys = await newKeys();
      const names = [...dnsNames.map((value) => ({ type: 'dns' as const, value })), ...ipAddresses.map((value) => ({ type: 'ip' as const, value }))];
      const leaf = await x509.X509CertificateGenerator.create(
        {
          subject: `CN=${name}`,
          issuer: root.subject,
          publicKey: keys.publicKey,
          signingKey: rootKeys.privateKey,
          signingAlgorithm: SIGNING,
          notBefore,
          notAfter,
          extensions: [
            new x509.BasicConstraintsExtension(false, undefined, true),
            new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
            new x509.ExtendedKeyUsageExtension([server ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth], false),
            ...(names.length === 0 ? [] : [new x509.SubjectAlternativeNameExtension(names, false)]),
            await x509.AuthorityKeyIdentifierExtension.create(rootKeys.publicKey, false, webcrypto),
          ],
        },
        webcrypto,
      );
      return { keyPem: await pkcs8Pem(keys.privateKey), certificatePem: `${leaf.toString('pem')}\n` };
    },
  };
}
