import { expect } from 'chai';
import { brokerConfigSchema, configErrorMap, isLoopbackHost, metricsConfigSchema, parseListenAddress, schemaProblems } from '../../../src/config/index.js';

/** The problems of parsing `input` as the metrics section, as `path: message` lines. */
function problems(input: unknown): string[] {
  const result = metricsConfigSchema.safeParse(input, { error: configErrorMap });
  if (result.success) return [];
  return schemaProblems(result.error).map((p) => `${p.path}: ${p.message}`);
}

describe('config/metrics-config', () => {
  it('defaults: enabled on 127.0.0.1:9464, loopback only', () => {
    expect(metricsConfigSchema.parse({})).to.deep.equal({ enabled: true, listen: '127.0.0.1:9464', allowRemote: false });
  });

  it('is an optional section of the broker config, reported under its path', () => {
    const base = { hsm: { token: 'online', pin: { file: '/etc/credbroker/online.pin' } } };
    expect(brokerConfigSchema.parse(base)).not.to.have.property('metrics');
    const result = brokerConfigSchema.safeParse({ ...base, metrics: { listen: '0.0.0.0:9464' } }, { error: configErrorMap });
    expect(result.success).to.equal(false);
    if (!result.success) expect(schemaProblems(result.error).map((p) => p.path)).to.deep.equal(['metrics.listen']);
  });

  describe('accepts', () => {
    const valid: [string, Record<string, unknown>][] = [
      ['127.0.0.1 with a port', { listen: '127.0.0.1:9464' }],
      ['port 0', { listen: '127.0.0.1:0' }],
      ['another 127/8 address', { listen: '127.1.2.3:9100' }],
      ['localhost', { listen: 'localhost:9464' }],
      ['::1 in brackets', { listen: '[::1]:9464' }],
      ['an IPv4-mapped loopback', { listen: '[::ffff:127.0.0.1]:9464' }],
      ['0.0.0.0 with allowRemote', { listen: '0.0.0.0:9464', allowRemote: true }],
      ['a host name with allowRemote', { listen: 'metrics.broker.internal:9464', allowRemote: true }],
      ['disabled', { enabled: false }],
    ];
    for (const [name, input] of valid) {
      it(name, () => {
        expect(problems(input)).to.deep.equal([]);
      });
    }
  });

  describe('refuses', () => {
    const remote = 'is not a loopback address: metrics reveal identities';
    const invalid: [string, Record<string, unknown>, string][] = [
      ['0.0.0.0 without allowRemote', { listen: '0.0.0.0:9464' }, `listen: 0.0.0.0:9464 ${remote}`],
      ['[::] without allowRemote', { listen: '[::]:9464' }, `listen: [::]:9464 ${remote}`],
      ['a LAN address without allowRemote', { listen: '10.0.0.5:9464' }, `listen: 10.0.0.5:9464 ${remote}`],
      ['a host name without allowRemote', { listen: 'broker.internal:9464' }, `listen: broker.internal:9464 ${remote}`],
      ['no port', { listen: '127.0.0.1' }, 'listen: expected host:port'],
      ['port 65536', { listen: '127.0.0.1:65536' }, 'listen: expected host:port'],
      ['IPv6 without brackets', { listen: '::1:9464' }, 'listen: expected host:port'],
      ['a URL', { listen: 'http://127.0.0.1:9464' }, 'listen: expected host:port'],
      ['enabled as text', { enabled: 'yes' }, 'enabled: expected true or false'],
      ['an unknown key', { port: 9464 }, 'port: unknown key "port"'],
    ];
    for (const [name, input, expected] of invalid) {
      it(name, () => {
        const found = problems(input);
        expect(found).to.have.length(1);
        expect(found[0]).to.satisfy((line: string) => line.startsWith(expected), `${found[0]} vs ${expected}`);
      });
    }
  });

  it('parseListenAddress splits host and port, and strips IPv6 brackets', () => {
    expect(parseListenAddress('127.0.0.1:9464')).to.deep.equal({ host: '127.0.0.1', port: 9464 });
    expect(parseListenAddress('[::1]:0')).to.deep.equal({ host: '::1', port: 0 });
    expect(parseListenAddress('localhost:80')).to.deep.equal({ host: 'localhost', port: 80 });
    for (const bad of ['', ':9464', '127.0.0.1:', '127.0.0.1:09464', '[127.0.0.1]:9464', '[::1:9464', 'a b:1', '-host:1']) {
      expect(parseListenAddress(bad), bad).to.equal(null);
    }
  });

  it('isLoopbackHost: 127/8, ::1, mapped 127/8 and localhost only', () => {
    for (const host of ['127.0.0.1', '127.255.0.9', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST']) expect(isLoopbackHost(host), host).to.equal(true);
    for (const host of ['0.0.0.0', '::', '128.0.0.1', '10.0.0.1', '::2', '::ffff:10.0.0.1', 'localhost.example', 'broker']) expect(isLoopbackHost(host), host).to.equal(false);
  });
});
