import { expect } from 'chai';
import { coverageRatio, rotationCoverage } from '../../../src/server/rotation-coverage.js';
import type { CertificateProfileName } from '../../../src/store/index.js';

const TD = 'spiffe://unit.test';

function cert(serial: string, id: string, profile: CertificateProfileName = 'service'): { serial: string; spiffeId: string; profile: CertificateProfileName } {
  return { serial, spiffeId: `${TD}/${id}`, profile };
}

describe('server/rotation-coverage', () => {
  it('counts identities, not certificates: two live certificates of one identity, one watched, make one watching identity', () => {
    const watched = new Set(['b2']);
    const figures = rotationCoverage([cert('a1', 'import'), cert('b1', 'blur'), cert('b2', 'blur'), cert('c1', 'detect')], (s) => watched.has(s));
    expect(Object.fromEntries(figures)).to.deep.equal({ service: { identities: 3, watching: 1 } });
    expect(coverageRatio(figures.get('service')!)).to.be.closeTo(1 / 3, 1e-12);
  });

  it('a watched certificate seen before an unwatched one of the same identity still counts', () => {
    const figures = rotationCoverage([cert('b2', 'blur'), cert('b1', 'blur')], (s) => s === 'b2');
    expect(figures.get('service')).to.deep.equal({ identities: 1, watching: 1 });
  });

  it('reports services and operators apart, and leaves the broker\'s own server certificate out', () => {
    const figures = rotationCoverage([cert('o1', 'ops/alice', 'operator'), cert('s1', 'credbroker/broker', 'server'), cert('a1', 'import')], (s) => s === 'a1' || s === 's1');
    expect(Object.fromEntries(figures)).to.deep.equal({ operator: { identities: 1, watching: 0 }, service: { identities: 1, watching: 1 } });
  });

  it('asks about each serial only until its identity is known to watch', () => {
    const asked: string[] = [];
    rotationCoverage([cert('a1', 'import'), cert('a2', 'import'), cert('a3', 'import')], (s) => {
      asked.push(s);
      return s === 'a2';
    });
    expect(asked).to.deep.equal(['a1', 'a2']);
  });

  it('nothing live: no figures, and the ratio of an empty profile is null, not 0 or NaN', () => {
    expect(rotationCoverage([], () => true).size).to.equal(0);
    expect(coverageRatio({ identities: 0, watching: 0 })).to.equal(null);
    expect(coverageRatio({ identities: 4, watching: 4 })).to.equal(1);
  });
});
