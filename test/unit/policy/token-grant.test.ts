import { expect } from 'chai';
import { checkTokenRequest, type TokenGrant } from '../../../src/policy/index.js';
import { catchBrokerError } from '../../helpers/broker-error.js';

describe('policy/token-grant checkTokenRequest', () => {
  const grant: TokenGrant = {
    audiences: ['storage.source', 'storage.detections'],
    scopes: ['media.source.read', 'media.detections.write'],
    defaultTtlMs: 300_000,
    maxTtlMs: 900_000,
    requireBinding: true,
  };

  const allowed: [string, string[]][] = [
    ['storage.source', ['media.source.read']],
    ['storage.detections', ['media.detections.write']],
    ['storage.source', ['media.source.read', 'media.detections.write']],
    ['storage.source', ['media.source.read', 'media.source.read']],
  ];
  for (const [audience, scopes] of allowed) {
    it(`allows ${audience} ${scopes.join(' ')}`, () => {
      expect(() => {
        checkTokenRequest(grant, audience, scopes);
      }).not.to.throw();
    });
  }

  const refused: [TokenGrant | null, string, string[], string, string, RegExp][] = [
    [null, 'storage.source', ['media.source.read'], 'denied', 'policy.no_tokens', /grants this identity no tokens/],
    [grant, 'storage.anonymized', ['media.source.read'], 'denied', 'policy.audience', /tokens for the audience "storage.anonymized"/],
    [grant, 'STORAGE.source', ['media.source.read'], 'denied', 'policy.audience', /"STORAGE.source"/],
    [grant, 'storage.*', ['media.source.read'], 'denied', 'policy.audience', /"storage\.\*"/],
    [grant, '', ['media.source.read'], 'invalid', 'policy.audience', /one audience of 1 to 256 characters/],
    [grant, 'storage.source extra', ['media.source.read'], 'invalid', 'policy.audience', /without whitespace/],
    [grant, 'x'.repeat(257), ['media.source.read'], 'invalid', 'policy.audience', /1 to 256 characters/],
    [grant, 'storage.source', [], 'invalid', 'policy.scope', /at least one scope/],
    [grant, 'storage.source', ['media.source.write'], 'denied', 'policy.scope', /the scope "media.source.write"$/],
    [grant, 'storage.source', ['media.source.read', 'media.*'], 'denied', 'policy.scope', /the scope "media\.\*"$/],
    [grant, 'storage.source', ['a', 'media.source.read', 'b', 'a'], 'denied', 'policy.scope', /the scopes "a", "b"$/],
    [grant, 'storage.source', Array.from({ length: 12 }, (_, i) => `s${i}`), 'denied', 'policy.scope', /"s9" and 2 more$/],
  ];
  for (const [g, audience, scopes, kind, code, message] of refused) {
    it(`refuses ${g === null ? 'any token without a grant' : `${audience.slice(0, 30)} ${scopes.join(' ')}`}: ${kind} ${code}`, async () => {
      const error = await catchBrokerError(() => {
        checkTokenRequest(g, audience, scopes);
      });
      expect(error.kind).to.equal(kind);
      expect(error.code).to.equal(code);
      expect(error.publicMessage).to.match(message);
      // What is granted stays out of the message: a denied caller learns nothing about policy.
      expect(error.publicMessage).not.to.contain('storage.detections');
      expect(error.publicMessage).not.to.contain('media.detections.write');
    });
  }
});
