import { expect } from 'chai';
import * as x509 from '@peculiar/x509';
import { SoftwareSigner } from '../../../src/core/index.js';
import { createIntermediateCertificate, createRootCertificate } from '../../../src/pki/index.js';
import { IntermediateRollover, pointOfLife, type CaIntermediate } from '../../../src/server/intermediate-rollover.js';
import { MemoryRolloverState } from '../../../src/server/rollover-state-file.js';
import { catchBrokerError } from '../../helpers/broker-error.js';
import { SeededRandom } from '../../helpers/seeded-random.js';

const T0 = new Date('2026-12-01T00:00:00Z');
const HOUR_MS = 3_600_000;
const at = (hours: number): Date => new Date(T0.getTime() + hours * HOUR_MS);

describe('server/intermediate-rollover', () => {
  const random = new SeededRandom('intermediate-rollover');
  let root: x509.X509Certificate;
  let rootSigner: SoftwareSigner;

  /** An intermediate valid from `fromHours` for `lifeHours`. */
  async function intermediate(label: string, fromHours: number, lifeHours: number): Promise<CaIntermediate> {
    const signer = await SoftwareSigner.generate('P-256');
    const certificate = await createIntermediateCertificate({ issuerSigner: rootSigner, issuerCertificate: root, publicKey: signer.publicKey, subject: `CN=${label}`, trustDomain: 'unit.test', notBefore: at(fromHours), notAfter: at(fromHours + lifeHours), random });
    return { keyLabel: label, certificate, signer };
  }

  before(async () => {
    rootSigner = await SoftwareSigner.generate('P-256');
    root = await createRootCertificate({ signer: rootSigner, subject: 'CN=unit root', notBefore: at(-1), notAfter: at(10_000), random });
  });

  function rollover(intermediates: CaIntermediate[], now: Date, state = new MemoryRolloverState(), changes: string[] = []): IntermediateRollover {
    return new IntermediateRollover({ intermediates, roots: [root], trustDomain: 'unit.test', maxLeafTtlMs: () => 24 * HOUR_MS, state, onBundleChanged: (reason) => changes.push(reason) }, now);
  }

  it('the defaults: prepare at 1/2, activate at 5/6 of the life', async () => {
    const first = await intermediate('first', 0, 120);
    expect(pointOfLife(first.certificate, 0.5).toISOString()).to.equal(at(60).toISOString());
    expect(pointOfLife(first.certificate, 5 / 6).toISOString()).to.equal(at(100).toISOString());
  });

  it('publishes a prepared intermediate at once, activates it at 5/6, retires the old one when its last leaf expired', async () => {
    const first = await intermediate('first', 0, 120);
    const second = await intermediate('second', 50, 120);
    const changes: string[] = [];
    const ca = rollover([first], at(1), new MemoryRolloverState(), changes);
    expect(ca.warning(at(59))).to.equal(null);
    expect(ca.warning(at(61))).to.match(/no next intermediate is prepared/);

    expect(ca.add([second], at(61))).to.equal(1);
    expect(changes).to.have.length(1);
    expect(ca.warning(at(61))).to.equal(null);
    expect(ca.current(at(61)).intermediate).to.equal(first.certificate);
    expect(ca.current(at(61)).intermediates).to.deep.equal([first.certificate, second.certificate]);

    expect(ca.tick(at(99.9))).to.equal(false);
    ca.noteIssued(first.certificate.serialNumber.toLowerCase(), at(99.9 + 24));
    expect(ca.tick(at(100))).to.equal(true);
    expect(ca.current(at(100)).intermediate).to.equal(second.certificate);
    expect(ca.views(at(100)).map((v) => v.state)).to.deep.equal(['active', 'retiring']);
    // Still trusted while a leaf of the old one may live: 24 h after the switch, but leaves end with their issuer (120 h).
    expect(ca.views(at(100)).find((v) => v.state === 'retiring')?.nextChangeAt?.toISOString()).to.equal(at(120).toISOString());
    expect(ca.trusted(at(119.9))).to.have.length(2);
    expect(ca.trusted(at(120))).to.deep.equal([second.certificate]);
    expect(ca.views(at(120)).map((v) => v.state)).to.deep.equal(['active', 'retired']);
    expect(changes).to.have.length(3);
  });

  it('an operator activates early; without a prepared one it is refused', async () => {
    const first = await intermediate('first', 0, 120);
    const ca = rollover([first], at(1));
    expect((await catchBrokerError(() => ca.activateNext(at(2)))).code).to.equal('ca.no_prepared_intermediate');
    const second = await intermediate('second', 0, 240);
    ca.add([second], at(2));
    expect(ca.activateNext(at(3)).certificate).to.equal(second.certificate);
    expect(ca.current(at(3)).signer).to.equal(second.signer);
  });

  it('a prepared intermediate not yet valid is not activated; an expired active one is replaced at once', async () => {
    const first = await intermediate('first', 0, 120);
    const later = await intermediate('later', 110, 120);
    const ca = rollover([first, later], at(1));
    expect(ca.current(at(105)).intermediate).to.equal(first.certificate);
    expect(ca.current(at(110)).intermediate).to.equal(later.certificate);
  });

  it('a restart resumes from the state: the activated intermediate keeps signing', async () => {
    const first = await intermediate('first', 0, 120);
    const second = await intermediate('second', 0, 240);
    const state = new MemoryRolloverState();
    rollover([first, second], at(1), state).activateNext(at(2));
    const again = rollover([first, second], at(3), state);
    expect(again.current(at(3)).intermediate).to.equal(second.certificate);
    expect(again.views(at(3)).map((v) => [v.keyLabel, v.state])).to.deep.equal([['second', 'active'], ['first', 'retiring']]);
  });
});

describe('server/intermediate-rollover: retirement follows the last leaf', () => {
  it('keeps a replaced intermediate until deactivation + the longest leaf, or a later leaf it saw', async () => {
    const random = new SeededRandom('retire');
    const rootSigner = await SoftwareSigner.generate('P-256');
    const root = await createRootCertificate({ signer: rootSigner, subject: 'CN=r', notBefore: at(-1), notAfter: at(10_000), random });
    const make = async (label: string, life: number): Promise<CaIntermediate> => {
      const signer = await SoftwareSigner.generate('P-256');
      return { keyLabel: label, signer, certificate: await createIntermediateCertificate({ issuerSigner: rootSigner, issuerCertificate: root, publicKey: signer.publicKey, subject: `CN=${label}`, trustDomain: 'unit.test', notBefore: at(0), notAfter: at(life), random }) };
    };
    const first = await make('first', 1000);
    const second = await make('second', 2000);
    const ca = new IntermediateRollover({ intermediates: [first, second], roots: [root], trustDomain: 'unit.test', maxLeafTtlMs: () => 4 * HOUR_MS, state: new MemoryRolloverState() }, at(1));
    ca.activateNext(at(10));
    // A leaf signed by the old key just after the switch (an issuance in flight) lives longer.
    ca.noteIssued(first.certificate.serialNumber.toLowerCase(), at(15));
    expect(ca.trusted(at(14.9))).to.have.length(2);
    expect(ca.trusted(at(15))).to.have.length(1);
  });
});
