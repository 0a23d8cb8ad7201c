/** The `store` section: SQLite by default, PostgreSQL with its password from a secret source. */
import { expect } from 'chai';
import { ConfigError, brokerConfigSchema, parseConfig } from '../../../src/config/index.js';

const HSM = 'hsm: { token: credbroker-online, pin: { file: /etc/credbroker/online.pin } }\n';

function parse(store: string): ReturnType<typeof parseConfig<typeof brokerConfigSchema>> {
  return parseConfig(`${HSM}store: ${store}\n`, brokerConfigSchema, '/etc/credbroker/broker.yaml');
}

function problems(store: string): string[] {
  try {
    parse(store);
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return (error as ConfigError).problems.map((p) => `${p.path}: ${p.message}`);
  }
  return expect.fail('expected a ConfigError');
}

describe('config: store', () => {
  it('is SQLite when kind is left out, with the default path', () => {
    expect(parse('{ path: ./data/broker.db }').store).to.deep.equal({ kind: 'sqlite', path: './data/broker.db' });
    expect(parse('{ kind: sqlite }').store).to.deep.equal({ kind: 'sqlite', path: './credbroker.db' });
  });

  it('postgres: defaults applied, the password a secret source', () => {
    expect(parse('{ kind: postgres, host: db.internal, database: credbroker, user: broker, password: { file: /etc/credbroker/pg.password } }').store).to.deep.equal({
      kind: 'postgres',
      host: 'db.internal',
      port: 5432,
      database: 'credbroker',
      user: 'broker',
      password: { file: '/etc/credbroker/pg.password' },
      poolSize: 4,
      revocationPollInterval: '2s',
      lockTimeout: '5s',
    });
  });

  const refused: [string, string, RegExp][] = [
    ['a password in the config', '{ kind: postgres, host: h, database: d, user: u, password: hunter2 }', /store\.password.*is a secret/],
    ['a password from the environment', '{ kind: postgres, host: h, database: d, user: u, password: { env: PGPASSWORD } }', /store\.password\.env.*never written in a config file or an environment variable/],
    ['a path on a postgres store', '{ kind: postgres, host: h, database: d, user: u, path: x.db }', /store\.path.*no path/],
    ['an unknown key', '{ kind: postgres, host: h, database: d, user: u, sslmode: disable }', /store.*sslmode/],
    ['an unknown kind', '{ kind: mysql, host: h }', /store\.kind.*sqlite.*postgres|store.*expected kind/],
    ['a missing host', '{ kind: postgres, database: d, user: u }', /store\.host/],
    ['a poll interval out of range', '{ kind: postgres, host: h, database: d, user: u, revocationPollInterval: 5m }', /store\.revocationPollInterval.*100ms to 60s/],
    ['a pool of one', '{ kind: postgres, host: h, database: d, user: u, poolSize: 1 }', /store\.poolSize/],
  ];
  for (const [what, store, message] of refused) {
    it(`refuses ${what}`, () => {
      expect(problems(store).join('\n')).to.match(message);
    });
  }
});
