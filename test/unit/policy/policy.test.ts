import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { HOUR_MS, MINUTE_MS, isBrokerError } from '../../../src/core/index.js';
import { Policy, loadPolicyFile, type IdentityPolicy } from '../../../src/policy/index.js';
import { configError, operator, policyYaml, service, TD } from './policy-fixtures.js';

const repoRoot = join(import.meta.dirname, '..', '..', '..');
const DEV_POLICY = join(repoRoot, 'pki', 'policy.yaml');
const PRODUCTION_POLICY = join(repoRoot, 'pki', 'policy.example-production.yaml');

const parse = (text: string): Policy => Policy.parse(text, 'policy.yaml');

describe('policy/policy', () => {
  describe('pki/policy.yaml (the development policy)', () => {
    const policy = loadPolicyFile(DEV_POLICY);
    const id = (path: string): string => `spiffe://anonymizer.local/${path}`;
    const get = (path: string): IdentityPolicy => policy.lookup(id(path)) ?? expect.fail(`no identity ${path}`);

    it('parses, in the dev ceremony trust domain, with no findings', () => {
      expect(policy.trustDomain).to.equal('anonymizer.local');
      expect(readFileSync(join(repoRoot, 'pki', 'ceremonies', 'dev.yaml'), 'utf8')).to.match(/^trustDomain: anonymizer\.local$/m);
      expect(policy.source).to.equal(DEV_POLICY);
      expect(policy.findings()).to.deep.equal([]);
    });

    it('has one identity per pipeline stage plus one operator, all exact IDs', () => {
      expect(policy.identities().map((i) => [i.id, i.role, i.isPattern])).to.deep.equal([
        [id('pipeline/import'), 'service', false],
        [id('pipeline/detect'), 'service', false],
        [id('pipeline/blur'), 'service', false],
        [id('pipeline/export'), 'service', false],
        [id('admin/panel'), 'service', false],
        [id('infra/backup'), 'service', false],
        [id('ops/dev-operator'), 'operator', false],
      ]);
    });

    it('grants each stage only the scopes and resources it needs (least privilege)', () => {
      const grants = Object.fromEntries(
        policy.identities().map((i) => [i.id.replace('spiffe://anonymizer.local/', ''), { audiences: i.tokens?.audiences ?? [], scopes: i.tokens?.scopes ?? [], resources: i.resources }]),
      );
      expect(grants).to.deep.equal({
        'pipeline/import': { audiences: ['storage.source'], scopes: ['media.source.write'], resources: ['bucket:source-media'] },
        'pipeline/detect': {
          audiences: ['storage.source', 'storage.detections'],
          scopes: ['media.source.read', 'media.detections.write'],
          resources: ['bucket:source-media', 'bucket:detections'],
        },
        'pipeline/blur': {
          audiences: ['storage.source', 'storage.detections', 'storage.anonymized'],
          scopes: ['media.source.read', 'media.detections.read', 'media.anonymized.write'],
          resources: ['bucket:source-media', 'bucket:detections', 'bucket:anonymized'],
        },
        'pipeline/export': { audiences: ['storage.anonymized'], scopes: ['media.anonymized.read'], resources: ['bucket:anonymized'] },
        'admin/panel': { audiences: ['jobs.api'], scopes: ['jobs.status.read'], resources: ['api:job-status'] },
        'infra/backup': {
          audiences: ['storage.anonymized', 'storage.backup'],
          scopes: ['media.anonymized.read', 'backup.archive.write'],
          resources: ['bucket:anonymized', 'bucket:backup-archive'],
        },
        'ops/dev-operator': { audiences: [], scopes: [], resources: ['api:credbroker-operator'] },
      });
    });

    it('never lets export, the admin panel, backup or the operator reach source media or detections', () => {
      for (const path of ['pipeline/export', 'admin/panel', 'infra/backup', 'ops/dev-operator']) {
        const identity = get(path);
        const reach = [...(identity.tokens?.audiences ?? []), ...(identity.tokens?.scopes ?? []), ...identity.resources];
        expect(reach.filter((name) => /source|detection/.test(name)), path).to.deep.equal([]);
      }
      // Only import writes originals; nobody else may alter them.
      const writers = policy.identities().filter((i) => i.tokens?.scopes.includes('media.source.write') === true);
      expect(writers.map((i) => i.id)).to.deep.equal([id('pipeline/import')]);
    });

    it('keeps TTLs short: bound tokens of at most 15 min, certificates of at most 2 h (operator 1 h)', () => {
      for (const identity of policy.identities()) {
        expect(identity.certificates.maxTtlMs, identity.id).to.be.at.most(identity.role === 'operator' ? HOUR_MS : 2 * HOUR_MS);
        expect(identity.certificates.defaultTtlMs, identity.id).to.be.at.most(HOUR_MS);
        if (identity.tokens !== null) {
          expect(identity.tokens.requireBinding, identity.id).to.equal(true);
          expect(identity.tokens.defaultTtlMs, identity.id).to.equal(5 * MINUTE_MS);
          expect(identity.tokens.maxTtlMs, identity.id).to.be.at.most(15 * MINUTE_MS);
        }
      }
      expect(get('ops/dev-operator').tokens).to.equal(null);
      expect(get('pipeline/import').certificates).to.deep.equal({ defaultTtlMs: 30 * MINUTE_MS, maxTtlMs: HOUR_MS });
      expect(policy.joinTokens).to.deep.equal({ defaultTtlMs: 15 * MINUTE_MS, maxTtlMs: 30 * MINUTE_MS });
    });

    it('gives DNS and IP SANs only to the services that serve (import, admin panel)', () => {
      const withSans = policy.identities().filter((i) => i.dnsNames.length > 0 || i.ipAddresses.length > 0);
      expect(withSans.map((i) => i.id)).to.deep.equal([id('pipeline/import'), id('admin/panel')]);
    });
  });

  describe('pki/policy.example-production.yaml', () => {
    const policy = loadPolicyFile(PRODUCTION_POLICY);

    it('parses in the production ceremony trust domain; its one finding is the wildcard DNS name', () => {
      expect(policy.trustDomain).to.equal('anonymizer.example.com');
      expect(readFileSync(join(repoRoot, 'pki', 'ceremonies', 'production-example.yaml'), 'utf8')).to.match(/^trustDomain: anonymizer\.example\.com$/m);
      expect(policy.findings().map((f) => f.path)).to.deep.equal(['identities[0].dnsNames[0]']);
    });

    it('an exact entry wins over the worker pattern; the pattern takes one segment only', () => {
      const td = 'spiffe://anonymizer.example.com';
      expect(policy.lookup(`${td}/pipeline/detect/canary`)?.id).to.equal(`${td}/pipeline/detect/canary`);
      expect(policy.lookup(`${td}/pipeline/detect/gpu-07`)?.id).to.equal(`${td}/pipeline/detect/*`);
      expect(policy.lookup(`${td}/pipeline/detect/gpu-07/x`)).to.equal(null);
      expect(policy.lookup(`${td}/pipeline/detect`)).to.equal(null);
    });
  });

  describe('parse', () => {
    it('computes effective TTLs: the identity where it sets them, else the global ones', () => {
      const policy = parse(
        policyYaml({
          certificates: '{ defaultTtl: 1h, maxTtl: 8h }',
          tokens: '{ defaultTtl: 5m, maxTtl: 30m }',
          identities: [
            service('spiffe://td.test/none', 'tokens: { audiences: [a], scopes: [s] }'),
            service('spiffe://td.test/both', 'certificates: { defaultTtl: 30m, maxTtl: 2h }, tokens: { audiences: [a], scopes: [s], defaultTtl: 1m, maxTtl: 10m }'),
            service('spiffe://td.test/max-only', 'certificates: { maxTtl: 20m }, tokens: { audiences: [a], scopes: [s], maxTtl: 2m }'),
            service('spiffe://td.test/default-only', 'certificates: { defaultTtl: 10m }, tokens: { audiences: [a], scopes: [s], defaultTtl: 1m }'),
          ],
        }),
      );
      const ttls = policy.identities().map((i) => [i.certificates.defaultTtlMs / MINUTE_MS, i.certificates.maxTtlMs / MINUTE_MS, (i.tokens?.defaultTtlMs ?? 0) / MINUTE_MS, (i.tokens?.maxTtlMs ?? 0) / MINUTE_MS]);
      expect(ttls).to.deep.equal([
        [60, 480, 5, 30],
        [30, 120, 1, 10],
        [20, 20, 2, 2], // an unset default is lowered to the identity's shorter max
        [10, 480, 1, 30],
      ]);
    });

    it('applies defaults: no SANs, no resources, no tokens, tokens bound to the certificate', () => {
      const policy = parse(policyYaml({ identities: [service('spiffe://td.test/a'), service('spiffe://td.test/b', 'tokens: { audiences: [a], scopes: [s] }')] }));
      const [a, b] = policy.identities();
      expect(a).to.deep.include({ dnsNames: [], ipAddresses: [], resources: [], tokens: null, isPattern: false, description: 'test service', role: 'service' });
      expect(b?.tokens?.requireBinding).to.equal(true);
    });

    it('freezes the policy and everything it returns', () => {
      const policy = parse(policyYaml({ identities: [service('spiffe://td.test/a', 'dnsNames: [a.test], tokens: { audiences: [a], scopes: [s] }')] }));
      const identity = policy.identities()[0]!;
      for (const value of [policy, policy.identities(), identity, identity.dnsNames, identity.certificates, identity.tokens, identity.tokens?.scopes, policy.joinTokens, policy.findings()]) {
        expect(Object.isFrozen(value)).to.equal(true);
      }
      expect(() => (identity.dnsNames as string[]).push('evil.test')).to.throw(TypeError);
    });

    it('sha256 is the hash of the source text and changes with any byte of it', () => {
      const text = policyYaml();
      const policy = parse(text);
      expect(policy.sha256).to.equal(createHash('sha256').update(text).digest('hex'));
      expect(parse(text).sha256).to.equal(policy.sha256);
      expect(parse(`${text}\n# a comment`).sha256).not.to.equal(policy.sha256);
      expect(parse(policyYaml({ tokens: '{ defaultTtl: 5m, maxTtl: 59m }' })).sha256).not.to.equal(policy.sha256);
    });
  });

  describe('lookup', () => {
    const policy = parse(
      policyYaml({
        identities: [
          service('spiffe://td.test/pipeline/*', 'description: "0: one segment under pipeline"'),
          service('spiffe://td.test/pipeline/**', 'description: "1: any depth under pipeline"'),
          service('spiffe://td.test/pipeline/detect/*', 'description: "2: detect workers"'),
          service('spiffe://td.test/*/detect/gpu-1', 'description: "3: gpu-1 anywhere"'),
          service('spiffe://td.test/pipeline/detect/gpu-1', 'description: "4: exact gpu-1"'),
          service('spiffe://td.test/pipeline/*/gpu-2', 'description: "5: gpu-2 of any stage"'),
          service('spiffe://td.test/pipeline/detect/**', 'description: "6: detect at any depth"'),
          operator('spiffe://td.test/ops/alice', 'description: "7: alice"'),
          service('spiffe://td.test/Case/x', 'description: "8: case"'),
        ],
      }),
    );
    const table: [string, number | null][] = [
      // exact entries first, even when patterns with as many literals match
      ['spiffe://td.test/pipeline/detect/gpu-1', 4],
      ['spiffe://td.test/ops/alice', 7],
      // more literal segments wins: detect/* (2) and */gpu-2 (2) over pipeline/* (1); tie → earlier
      ['spiffe://td.test/pipeline/detect/gpu-2', 2],
      ['spiffe://td.test/pipeline/blur/gpu-2', 5],
      ['spiffe://td.test/staging/detect/gpu-1', 3],
      // `*` is exactly one segment; on the 1-literal tie, pipeline/* comes before pipeline/**
      ['spiffe://td.test/pipeline/import', 0],
      // `/**` is one or more segments
      ['spiffe://td.test/pipeline/import/worker-1', 1],
      ['spiffe://td.test/pipeline/import/a/b/c', 1],
      ['spiffe://td.test/pipeline/detect/gpu-9/slot-1', 6],
      // no match: nothing granted
      ['spiffe://td.test/pipeline', null],
      ['spiffe://td.test/ops/bob', null],
      ['spiffe://td.test/ops/alice/laptop', null],
      ['spiffe://td.test/case/x', null],
      ['spiffe://td.test/Case/x', 8],
      ['spiffe://other.test/pipeline/import', null],
      // not a valid SPIFFE ID: null, never an exception, never a pattern's grant
      ['spiffe://td.test/pipeline/..', null],
      ['spiffe://td.test/pipeline/*', null],
      ['spiffe://td.test/pipeline/import/', null],
      ['spiffe://TD.test/pipeline/import', null],
      ['spiffe://td.test/pipeline/im%70ort', null],
      ['', null],
    ];
    for (const [spiffeId, expected] of table) {
      it(`${spiffeId === '' ? '(empty)' : spiffeId} → ${expected === null ? 'null' : `entry ${expected}`}`, () => {
        const found = policy.lookup(spiffeId);
        if (expected === null) expect(found).to.equal(null);
        else expect(found).to.equal(policy.identities()[expected]);
      });
    }
  });

  describe('validation: every problem with its path', () => {
    const cases: [string, string, [string, RegExp][]][] = [
      ['version', policyYaml({ version: '2' }), [['version', /expected version: 1/]]],
      ['trust domain', policyYaml({ trustDomain: 'TD.test', identities: [] }), [['trustDomain', /uppercase letter "T"/]]],
      ['trust domain with scheme', policyYaml({ trustDomain: 'spiffe://td.test', identities: [] }), [['trustDomain', /without "spiffe:\/\/"/]]],
      ['ID outside the trust domain', policyYaml({ identities: [service('spiffe://other.test/a')] }), [['identities[0].id', /in the trust domain "other.test", not in this policy's trust domain "td.test"/]]],
      ['malformed ID', policyYaml({ identities: [service('spiffe://td.test/a//b')] }), [['identities[0].id', /empty path segment/]]],
      ['not a SPIFFE ID', policyYaml({ identities: [service('https://td.test/a')] }), [['identities[0].id', /must start with "spiffe:\/\/"/]]],
      ['trust domain ID', policyYaml({ identities: [service('spiffe://td.test')] }), [['identities[0].id', /names the trust domain itself/]]],
      ['partial wildcard', policyYaml({ identities: [service('spiffe://td.test/pipe*')] }), [['identities[0].id', /must be whole path segments/]]],
      ['** not last', policyYaml({ identities: [service('spiffe://td.test/a/**/b')] }), [['identities[0].id', /"\*\*" may only end a pattern/]]],
      ['catch-all pattern', policyYaml({ identities: [service('spiffe://td.test/**')] }), [['identities[0].id', /at least one literal path segment/]]],
      [
        'duplicate IDs',
        policyYaml({ identities: [service('spiffe://td.test/a'), service('spiffe://td.test/b'), service('spiffe://td.test/a'), service('spiffe://td.test/b/*'), service('spiffe://td.test/b/*')] }),
        [
          ['identities[2].id', /duplicate identity "spiffe:\/\/td.test\/a" \(already at identities\[0\]\)/],
          ['identities[4].id', /duplicate identity "spiffe:\/\/td.test\/b\/\*" \(already at identities\[3\]\)/],
        ],
      ],
      ['operator pattern', policyYaml({ identities: [operator('spiffe://td.test/ops/*')] }), [['identities[0].role', /a pattern cannot have the role operator/]]],
      ['operator /** pattern', policyYaml({ identities: [operator('spiffe://td.test/ops/**')] }), [['identities[0].role', /cannot have the role operator/]]],
      ['unknown role', policyYaml({ identities: ['{ id: "spiffe://td.test/a", role: admin, description: d }'] }), [['identities[0].role', /expected one of "service", "operator", got "admin"/]]],
      ['missing fields', policyYaml({ identities: ['{ id: "spiffe://td.test/a" }'] }), [['identities[0].role', /missing/], ['identities[0].description', /missing/]]],
      ['empty description', policyYaml({ identities: [service('spiffe://td.test/a', 'description: "  "')] }), [['identities[0].description', /at least 1 character/]]],
      [
        'DNS names',
        policyYaml({ identities: [service('spiffe://td.test/a', 'dnsNames: ["Import.test", "*.test", "a.*.test", "a..test", "a.test.", "ok.test", "ok.test", 7]')] }),
        [
          ['identities[0].dnsNames[0]', /"Import.test" has uppercase letters/],
          ['identities[0].dnsNames[1]', /"\*.test" is a wildcard over a single-label suffix/],
          ['identities[0].dnsNames[2]', /outside the first label/],
          ['identities[0].dnsNames[3]', /empty label/],
          ['identities[0].dnsNames[4]', /ends with "\."/],
          ['identities[0].dnsNames[7]', /expected a string, got 7/],
        ],
      ],
      ['duplicate DNS names', policyYaml({ identities: [service('spiffe://td.test/a', 'dnsNames: ["ok.test", "b.test", "ok.test"]')] }), [['identities[0].dnsNames[2]', /duplicate DNS name "ok.test" \(already at \[0\]\)/]]],
      [
        'IP addresses',
        policyYaml({ identities: [service('spiffe://td.test/a', 'ipAddresses: ["10.0.0.256", "10.0.0.1/8", "fd00::1/64", "fe80::1%eth0", "10.0.0.0/33", "::1", "::1"]')] }),
        [
          ['identities[0].ipAddresses[0]', /not an IPv4 or IPv6 address or CIDR block/],
          ['identities[0].ipAddresses[1]', /address bits set after the \/8 prefix/],
          ['identities[0].ipAddresses[2]', /address bits set after the \/64 prefix/],
          ['identities[0].ipAddresses[3]', /not an IPv4 or IPv6 address/],
          ['identities[0].ipAddresses[4]', /expected 0 to 32/],
          ['identities[0].ipAddresses[6]', /duplicate IP address "::1"/],
        ],
      ],
      [
        'audiences and scopes',
        policyYaml({ identities: [service('spiffe://td.test/a', 'tokens: { audiences: ["", "a b", "a"], scopes: ["media.*", "x\\ty", "s", "s", "q\\"uote"] }')] }),
        [
          ['identities[0].tokens.audiences[0]', /audience "" is empty/],
          ['identities[0].tokens.audiences[1]', /audience "a b" contains whitespace/],
          ['identities[0].tokens.scopes[0]', /scope "media\.\*" contains "\*": there are no wildcards/],
          ['identities[0].tokens.scopes[1]', /contains whitespace/],
          ['identities[0].tokens.scopes[3]', /duplicate scope "s" \(already at \[2\]\)/],
          ['identities[0].tokens.scopes[4]', /outside printable ASCII, or `"` or `\\`/],
        ],
      ],
      ['empty grant lists', policyYaml({ identities: [service('spiffe://td.test/a', 'tokens: { audiences: [], scopes: [] }')] }), [['identities[0].tokens.audiences', /at least 1 item/], ['identities[0].tokens.scopes', /at least 1 item/]]],
      ['tokens: null', policyYaml({ identities: [service('spiffe://td.test/a', 'tokens: null')] }), [['identities[0].tokens', /expected a mapping, got null/]]],
      ['requireBinding', policyYaml({ identities: [service('spiffe://td.test/a', 'tokens: { audiences: [a], scopes: [s], requireBinding: "yes" }')] }), [['identities[0].tokens.requireBinding', /expected true or false, got "yes"/]]],
      ['resources', policyYaml({ identities: [service('spiffe://td.test/a', 'resources: ["bucket:a", "bucket *", "bucket:a"]')] }), [['identities[0].resources[1]', /contains whitespace/], ['identities[0].resources[2]', /duplicate resource "bucket:a"/]]],
      ['identities not a list', policyYaml({ extra: '' }).replace(/identities:[\s\S]*$/, 'identities: { a: 1 }'), [['identities', /expected a list, got a mapping/]]],
    ];
    for (const [name, text, expected] of cases) {
      it(name, () => {
        const error = configError(() => parse(text));
        expect(isBrokerError(error, 'invalid')).to.equal(true);
        expect(error.code).to.equal('config.invalid');
        expect(error.problems.map((p) => p.path), error.message).to.deep.equal(expected.map(([path]) => path));
        for (const [index, [, message]] of expected.entries()) expect(error.problems[index]?.message, error.message).to.match(message);
        for (const [path] of expected) expect(error.message).to.contain(`  - ${path}: `);
      });
    }
  });

  describe('TTL caps: defaults ≤ max ≤ global ≤ hard caps', () => {
    const tokens = (ttl: string): string => `tokens: { audiences: [a], scopes: [s], ${ttl} }`;
    const cases: [string, Parameters<typeof policyYaml>[0], [string, RegExp][]][] = [
      ['join token hard cap 1h', { joinTokens: '{ defaultTtl: 15m, maxTtl: 61m }' }, [['joinTokens.maxTtl', /1h1m is above the hard cap of 1h for joinTokens/]]],
      ['join token default at most 15m', { joinTokens: '{ defaultTtl: 16m, maxTtl: 1h }' }, [['joinTokens.defaultTtl', /16m is above 15m, the longest default credbroker allows for joinTokens/]]],
      ['certificate hard cap 24h', { certificates: '{ defaultTtl: 1h, maxTtl: 25h }' }, [['certificates.maxTtl', /1d1h is above the hard cap of 1d for certificates/]]],
      ['certificate default at most 1h', { certificates: '{ defaultTtl: 2h, maxTtl: 24h }' }, [['certificates.defaultTtl', /2h is above 1h, the longest default/]]],
      ['token hard cap 1h', { tokens: '{ defaultTtl: 5m, maxTtl: 2h }' }, [['tokens.maxTtl', /2h is above the hard cap of 1h for tokens/]]],
      ['token default at most 5m', { tokens: '{ defaultTtl: 6m, maxTtl: 1h }' }, [['tokens.defaultTtl', /6m is above 5m/]]],
      ['global default above max', { tokens: '{ defaultTtl: 5m, maxTtl: 1m }' }, [['tokens.defaultTtl', /5m is above tokens.maxTtl \(1m\)/]]],
      ['identity certificate max above global', { certificates: '{ defaultTtl: 1h, maxTtl: 4h }', identities: [service('spiffe://td.test/a', 'certificates: { maxTtl: 5h }')] }, [['identities[0].certificates.maxTtl', /5h is above the global certificates.maxTtl \(4h\): an identity may only lower it/]]],
      ['identity certificate default above global', { certificates: '{ defaultTtl: 30m, maxTtl: 4h }', identities: [service('spiffe://td.test/a', 'certificates: { defaultTtl: 1h }')] }, [['identities[0].certificates.defaultTtl', /1h is above the global certificates.defaultTtl \(30m\)/]]],
      ['identity certificate default above its max', { identities: [service('spiffe://td.test/a', 'certificates: { defaultTtl: 1h, maxTtl: 30m }')] }, [['identities[0].certificates.defaultTtl', /1h is above maxTtl \(30m\)/]]],
      ['identity token max above global', { tokens: '{ defaultTtl: 5m, maxTtl: 15m }', identities: [service('spiffe://td.test/a', tokens('maxTtl: 20m'))] }, [['identities[0].tokens.maxTtl', /20m is above the global tokens.maxTtl \(15m\)/]]],
      ['identity token default above global', { identities: [service('spiffe://td.test/a', tokens('defaultTtl: 10m'))] }, [['identities[0].tokens.defaultTtl', /10m is above the global tokens.defaultTtl \(5m\)/]]],
      ['identity token default above its max', { identities: [service('spiffe://td.test/a', tokens('defaultTtl: 5m, maxTtl: 2m'))] }, [['identities[0].tokens.defaultTtl', /5m is above maxTtl \(2m\)/]]],
      ['durations need units', { tokens: '{ defaultTtl: 300, maxTtl: 1h }' }, [['tokens.defaultTtl', /expected a duration with a unit/]]],
      ['malformed duration', { tokens: '{ defaultTtl: 5 min, maxTtl: 1h }' }, [['tokens.defaultTtl', /"5 min" is not a duration/]]],
      ['below one second', { identities: [service('spiffe://td.test/a', 'certificates: { maxTtl: 999ms }')] }, [['identities[0].certificates.maxTtl', /"999ms" is shorter than 1s/]]],
      ['zero', { identities: [service('spiffe://td.test/a', 'certificates: { maxTtl: 0s }')] }, [['identities[0].certificates.maxTtl', /shorter than 1s/]]],
      ['missing global field', { tokens: '{ defaultTtl: 5m }' }, [['tokens.maxTtl', /missing: expected a duration/]]],
    ];
    for (const [name, parts, expected] of cases) {
      it(name, () => {
        const error = configError(() => parse(policyYaml(parts)));
        expect(error.problems.map((p) => p.path), error.message).to.deep.equal(expected.map(([path]) => path));
        for (const [index, [, message]] of expected.entries()) expect(error.problems[index]?.message, error.message).to.match(message);
      });
    }

    it('accepts every TTL exactly at its cap', () => {
      const policy = parse(
        policyYaml({
          joinTokens: '{ defaultTtl: 15m, maxTtl: 1h }',
          certificates: '{ defaultTtl: 1h, maxTtl: 24h }',
          tokens: '{ defaultTtl: 5m, maxTtl: 1h }',
          identities: [service('spiffe://td.test/a', 'certificates: { defaultTtl: 1h, maxTtl: 24h }, tokens: { audiences: [a], scopes: [s], defaultTtl: 5m, maxTtl: 1h }')],
        }),
      );
      expect(policy.identities()[0]?.certificates).to.deep.equal({ defaultTtlMs: HOUR_MS, maxTtlMs: 24 * HOUR_MS });
    });
  });

  describe('unknown keys are errors, wherever they are', () => {
    const cases: [string, string, string][] = [
      ['top level', policyYaml({ extra: 'colour: red' }), 'colour'],
      ['global block', policyYaml({ certificates: '{ defaultTtl: 1h, maxTtl: 24h, minTtl: 1m }' }), 'certificates.minTtl'],
      ['identity', policyYaml({ identities: [service('spiffe://td.test/a', 'scopes: [s]')] }), 'identities[0].scopes'],
      ['identity certificates', policyYaml({ identities: [service('spiffe://td.test/a', 'certificates: { ttl: 1h }')] }), 'identities[0].certificates.ttl'],
      ['identity tokens', policyYaml({ identities: [service('spiffe://td.test/a', 'tokens: { audiences: [a], scopes: [s], bind: true }')] }), 'identities[0].tokens.bind'],
      ['a near miss', policyYaml({ identities: [service('spiffe://td.test/a', 'dnsnames: [a.test]')] }), 'identities[0].dnsnames'],
    ];
    for (const [where, text, path] of cases) {
      it(where, () => {
        const error = configError(() => parse(text));
        expect(error.problems.map((p) => p.path)).to.deep.equal([path]);
        expect(error.problems[0]?.message).to.match(/^unknown key "[^"]+"/);
        expect(error.problems[0]?.message).to.match(/allowed here: /);
      });
    }

    it('suggests the key that was meant', () => {
      const error = configError(() => parse(policyYaml({ identities: [service('spiffe://td.test/a', 'dnsnames: [a.test]')] })));
      expect(error.problems[0]?.message).to.contain('did you mean "dnsNames"?');
    });
  });

  it('reports every problem at once, schema and cross-field together, in file order', () => {
    const text = policyYaml({
      extra: 'colour: red',
      joinTokens: '{ defaultTtl: 15m, maxTtl: 2h }',
      certificates: '{ defaultTtl: 1h, maxTtl: 48h, extra: 1 }',
      identities: [
        service('spiffe://other.test/a', 'certificates: { maxTtl: 30h }'),
        operator('spiffe://td.test/ops/*', 'dnsNames: ["Bad.test"]'),
        service('spiffe://td.test/b', 'tokens: { audiences: [a], scopes: ["x*"], maxTtl: 2h }'),
        service('spiffe://other.test/a'),
      ],
    });
    const error = configError(() => parse(text));
    expect(error.problems.map((p) => p.path)).to.deep.equal([
      'joinTokens.maxTtl',
      'certificates.maxTtl',
      'certificates.extra',
      'identities[0].id',
      'identities[0].certificates.maxTtl', // compared with the 24h cap although the global block is broken
      'identities[1].role',
      'identities[1].dnsNames[0]',
      'identities[2].tokens.scopes[0]',
      'identities[2].tokens.maxTtl',
      'identities[3].id', // outside the trust domain
      'identities[3].id', // and a duplicate of identities[0]
      'colour',
    ]);
    expect(error.message).to.match(/^invalid configuration in policy.yaml \(12 problems\):/);
  });

  it('YAML syntax errors have a line and column; an empty file lists every missing section', () => {
    const syntax = configError(() => parse('version: 1\nidentities: [\n'));
    expect(syntax.problems[0]?.line).to.be.a('number');
    const empty = configError(() => parse(''));
    expect(empty.problems.map((p) => p.path)).to.deep.equal(['version', 'trustDomain', 'joinTokens', 'certificates', 'tokens', 'identities']);
  });

  describe('findings (warnings that do not stop a policy)', () => {
    it('flags grants that widen exposure, with paths', () => {
      const policy = parse(
        policyYaml({
          certificates: '{ defaultTtl: 1h, maxTtl: 8h }',
          tokens: '{ defaultTtl: 5m, maxTtl: 30m }',
          identities: [
            operator('spiffe://td.test/ops/alice', 'certificates: { maxTtl: 1h }, dnsNames: [alice.test]'),
            service('spiffe://td.test/pipeline/**', 'certificates: { maxTtl: 1h }'),
            service('spiffe://td.test/tight', 'certificates: { maxTtl: 1h }, tokens: { audiences: [a], scopes: [s], maxTtl: 10m }, resources: [bucket:a]'),
            service('spiffe://td.test/loose', 'dnsNames: ["*.loose.test"], ipAddresses: [10.0.0.0/16, 10.1.0.0/24, "fd00::/48"], tokens: { audiences: [a], scopes: [s], requireBinding: false }'),
          ],
        }),
      );
      expect(policy.findings().map((f) => f.path)).to.deep.equal([
        'joinTokens.maxTtl',
        'identities[0]',
        'identities[1].id',
        'identities[3].certificates.maxTtl',
        'identities[3].tokens.maxTtl',
        'identities[3].tokens.requireBinding',
        'identities[3].resources',
        'identities[3].dnsNames[0]',
        'identities[3].ipAddresses[0]',
        'identities[3].ipAddresses[2]',
      ]);
      const message = (path: string): string => policy.findings().find((f) => f.path === path)?.message ?? '';
      expect(message('identities[3].tokens.requireBinding')).to.match(/bearer tokens/);
      expect(message('identities[3].tokens.maxTtl')).to.match(/global maximum \(30m\)/);
      expect(message('identities[3].ipAddresses[0]')).to.match(/2\^16 addresses/);
      expect(message('identities[1].id')).to.match(/any depth/);
      expect(message('identities[0]')).to.match(/operator with DNS or IP SANs/);
    });

    it('flags global limits at the hard caps and a policy without operators', () => {
      const policy = parse(policyYaml());
      expect(policy.findings().map((f) => f.path)).to.deep.equal(['joinTokens.maxTtl', 'certificates.maxTtl', 'tokens.maxTtl', 'identities', 'identities[0].certificates.maxTtl']);
    });
  });

  describe('loadPolicyFile', () => {
    it('names the file when it cannot be read', () => {
      const error = configError(() => loadPolicyFile(join(repoRoot, 'pki', 'no-such-policy.yaml')));
      expect(error.message).to.match(/^cannot read configuration file .*no-such-policy\.yaml: no such file or directory \(ENOENT\)/);
    });

    it('names the file in validation errors', () => {
      const error = configError(() => loadPolicyFile(join(repoRoot, 'pki', 'ceremonies', 'dev.yaml')));
      expect(error.source).to.equal(join(repoRoot, 'pki', 'ceremonies', 'dev.yaml'));
      expect(error.message).to.contain(`invalid configuration in ${join(repoRoot, 'pki', 'ceremonies', 'dev.yaml')}`);
    });

    it('sha256 is the hash of the file bytes', () => {
      expect(loadPolicyFile(DEV_POLICY).sha256).to.equal(createHash('sha256').update(readFileSync(DEV_POLICY)).digest('hex'));
    });

    it('TD is the fixtures trust domain', () => {
      expect(parse(policyYaml()).trustDomain).to.equal(TD);
    });
  });
});
