import { describe, expect, it } from '@jest/globals';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { FactValue, StepJob } from '#agency-contract';
import { FORMAT_CHECKS, createFactValidator, parseAgencies, parseFactCatalogue } from '#facts';
import type { Agency, LifeEventDefinition } from '#workflow';
import type { MockAgenciesConfig } from '../config/config.schema.js';
import { DEFAULT_SEED_DIR } from '../definitions/catalogue-seed.service.js';
import {
  MOCK_AGENCIES,
  municipalityOf,
  swedishDate,
  composeMock,
  unservedActions,
  deathRecord,
  municipalityOfPostalCode,
  vehiclesOwnedBy,
} from '#mock-agencies';
import { MemoryLedger, stepJob } from '../../test/support/memory-ledger.js';
import { MockAgencyRunner } from './mock-agency-runner.js';
import type { Application, EffectRecord } from './mock-ledger.repository.js';

// ---- the seed files ------------------------------------------------------------------------------

const catalogue = parseFactCatalogue(
  await readFile(path.join(DEFAULT_SEED_DIR, 'facts.yaml'), 'utf8'),
);
const validator = createFactValidator(catalogue.facts);
const agencyEntries: Agency[] = parseAgencies(
  await readFile(path.join(DEFAULT_SEED_DIR, 'agencies.yaml'), 'utf8'),
).agencies.filter((agency) => agency.adapter === 'mock');
const lifeEventDir = path.join(DEFAULT_SEED_DIR, 'life-events');
const lifeEvents = await Promise.all(
  (await readdir(lifeEventDir))
    .filter((file) => file.endsWith('.yaml'))
    .map(
      async (file) =>
        parseYaml(await readFile(path.join(lifeEventDir, file), 'utf8')) as LifeEventDefinition,
    ),
);

const NAME = { givenName: 'Anna Maria', surname: 'Lindqvist' };
const ADDRESS = { street: 'Storgatan 12', postalCode: '352 30', town: 'Växjö' };
const PREMISES = { street: 'Kungsgatan 3', postalCode: '352 33', town: 'Växjö' };

/** A valid value of every fact a step can need (each is checked against the catalogue below). */
const SAMPLE_FACTS: Record<string, FactValue> = {
  'person.personalNumber': '199012119948',
  'person.name': NAME,
  'person.address': ADDRESS,
  'person.municipalityCode': '0780',
  'person.bankAccount': { kind: 'swedish', account: '6789123456789' },
  'person.receivesPension': true,
  'person.hasOngoingBenefits': true,
  'business.name': 'Lindqvist Programutveckling',
  'business.legalForm': 'enskild-naringsidkare',
  'business.sniCode': '62010',
  'business.expectedTurnover': 500000,
  'business.willEmployStaff': true,
  'business.servesFood': true,
  'business.servesAlcohol': true,
  'business.shareCapital': 25000,
  'business.premisesAddress': PREMISES,
  'business.premisesMunicipalityCode': '0780',
  'business.orgNumber': '199012119948',
  // Test personnummer from the personnummer project's shared list.
  'child.personalNumber': '198211059954',
  'child.preschoolStartDate': '2027-08-16',
  'parentalBenefit.period': { from: '2026-03-01', to: '2026-08-31' },
  'parentalBenefit.extent': 'full',
  'move.newAddress': { street: 'Drottninggatan 5', postalCode: '411 14', town: 'Göteborg' },
  'move.date': '2026-04-01',
  'move.apartmentNumber': '1102',
  'move.municipalityCode': '1480',
  'deceased.personalNumber': '190905271474',
  'deceased.relationship': 'spouse',
  'deceased.dateOfDeath': '2026-01-10',
  'deceased.municipalityCode': '0180',
  'estate.assetsExceedFuneralCosts': true,
};

const SETTINGS: MockAgenciesConfig = {
  latencyMs: 0,
  failureRate: 0,
  decisionDelayMs: 0,
  rejectionRate: 0,
};

const signal = new AbortController().signal;

function runnerFor(
  code: string,
  settings: Partial<MockAgenciesConfig> = {},
  random: () => number = () => 0.5,
  clock = { now: new Date('2026-02-02T10:00:00Z') },
): { runner: MockAgencyRunner; ledger: MemoryLedger; clock: { now: Date } } {
  const agency = MOCK_AGENCIES.get(code);
  if (!agency) throw new Error(`no mock agency ${code}`);
  const ledger = new MemoryLedger(() => clock.now);
  const runner = new MockAgencyRunner(
    agency,
    ledger,
    { ...SETTINGS, ...settings },
    random,
    () => clock.now,
  );
  return { runner, ledger, clock };
}

/** Every mock step of every seeded life event: its agency, action and needs. */
const mockSteps = lifeEvents.flatMap((definition) =>
  definition.steps
    .filter((step) => agencyEntries.some((a) => a.code === step.agency))
    .map((step) => ({ lifeEvent: definition.key, ...step })),
);

function produces(agency: string, action: string): string[] {
  return (
    agencyEntries.find((a) => a.code === agency)?.actions.find((a) => a.name === action)
      ?.produces ?? []
  );
}

describe('the mock agencies cover config/agencies.yaml', () => {
  it('implements every action of every agency with adapter: mock, and nothing else', () => {
    expect(agencyEntries.map((a) => a.code).sort()).toEqual([...MOCK_AGENCIES.keys()].sort());
    for (const entry of agencyEntries) {
      const mock = composeMock(entry, MOCK_AGENCIES.get(entry.code));
      expect(unservedActions(entry, mock)).toEqual([]);
      expect(Object.keys(mock.actions).sort()).toEqual(entry.actions.map((a) => a.name).sort());
    }
  });

  it('names the actions of an agency it can serve neither built in nor configured', () => {
    const kommun = agencyEntries.find((entry) => entry.code === 'kommun');
    if (!kommun) throw new Error('no kommun in agencies.yaml');
    const extra: Agency = {
      ...kommun,
      actions: [
        ...kommun.actions,
        { name: 'issue-parking-permit', title: { sv: 'P', en: 'P' }, produces: [] },
      ],
    };
    expect(unservedActions(extra, composeMock(extra, MOCK_AGENCIES.get('kommun')))).toEqual([
      'issue-parking-permit',
    ]);
    const lantmateriet: Agency = { ...extra, code: 'lantmateriet' };
    expect(unservedActions(lantmateriet, composeMock(lantmateriet, undefined))).toEqual(
      lantmateriet.actions.map((a) => a.name),
    );
  });
});

describe('every handler produces what its action declares, valid against the fact catalogue', () => {
  it('has valid sample facts for every need of every mock step', () => {
    for (const step of mockSteps) {
      for (const key of step.needs) {
        expect({ key, problems: validator.validate(key, SAMPLE_FACTS[key]) }).toEqual({
          key,
          problems: [],
        });
      }
    }
  });

  const cases = mockSteps.map((step) => [`${step.lifeEvent}/${step.id}`, step] as const);
  // Actions no seeded life event uses yet still answer.
  const unused = agencyEntries.flatMap((agency) =>
    agency.actions
      .filter(
        (action) => !mockSteps.some((s) => s.agency === agency.code && s.action === action.name),
      )
      .map(
        (action) =>
          [
            `${agency.code}/${action.name}`,
            { agency: agency.code, action: action.name, needs: [] as string[] },
          ] as const,
      ),
  );

  it.each([...cases, ...unused])('%s', async (_name, step) => {
    const legalForm =
      step.action === 'register-limited-company'
        ? 'aktiebolag'
        : SAMPLE_FACTS['business.legalForm'];
    const facts = Object.fromEntries(
      step.needs.map(
        (key) => [key, key === 'business.legalForm' ? legalForm : SAMPLE_FACTS[key]] as const,
      ),
    ) as Record<string, FactValue>;
    const { runner } = runnerFor(step.agency);
    const outcome = await runner.handle(stepJob(step.action, facts), { signal });
    expect(outcome).toMatchObject({ outcome: 'completed', reference: expect.any(String) });
    if (outcome.outcome !== 'completed') return;
    expect(Object.keys(outcome.produced).sort()).toEqual(
      [...produces(step.agency, step.action)].sort(),
    );
    for (const [key, value] of Object.entries(outcome.produced)) {
      expect({ key, problems: validator.validate(key, value) }).toEqual({ key, problems: [] });
      // Already in the catalogue's canonical form, so equal facts compare equal.
      expect(validator.normalise(key, value)).toEqual(value);
    }
  });
});

describe('what the agencies produce', () => {
  it('registers a sole trader under their personnummer, and a limited company under a new number', async () => {
    const { runner } = runnerFor('bolagsverket');
    const soleTrader = await runner.handle(
      stepJob('register-sole-trader', {
        'person.name': NAME,
        'person.personalNumber': '199012119948',
        'business.name': 'Lindqvist IT',
        'business.legalForm': 'enskild-naringsidkare',
        'business.sniCode': '62010',
      }),
      { signal },
    );
    expect(soleTrader).toMatchObject({
      outcome: 'completed',
      produced: { 'business.orgNumber': '199012119948' },
    });
    expect(soleTrader).toMatchObject({
      reference: expect.stringMatching(/^BV-2026-[0-9A-F]{10}$/),
    });

    const company = (job: StepJob) => runner.handle(job, { signal });
    const ab = {
      'person.name': NAME,
      'person.personalNumber': '199012119948',
      'person.address': ADDRESS,
      'business.name': 'Lindqvist AB',
      'business.legalForm': 'aktiebolag',
      'business.sniCode': '62010',
      'business.shareCapital': 25000,
    };
    const numbers = await Promise.all(
      [1, 2, 3].map(() => company(stepJob('register-limited-company', ab))),
    );
    const orgNumbers = numbers.map((o) =>
      o.outcome === 'completed' ? o.produced['business.orgNumber'] : undefined,
    );
    expect(new Set(orgNumbers).size).toBe(3);
    for (const number of orgNumbers) {
      expect(typeof number === 'string' && FORMAT_CHECKS.organisationsnummer(number)).toBe(true);
    }
    expect(
      await company(stepJob('register-limited-company', { ...ab, 'business.shareCapital': 10000 })),
    ).toMatchObject({
      outcome: 'rejected',
      code: 'share-capital-too-low',
    });
  });

  it('gives VAT numbers SE + ten digits + 01 and registers the employer under the organisation number', async () => {
    const { runner } = runnerFor('skatteverket');
    const vat = (orgNumber: string) =>
      runner.handle(
        stepJob('register-vat', {
          'business.orgNumber': orgNumber,
          'business.expectedTurnover': 500000,
        }),
        {
          signal,
        },
      );
    expect(await vat('199012119948')).toMatchObject({
      produced: { 'business.vatNumber': 'SE901211994801' },
    });
    expect(await vat('559100-0004')).toMatchObject({
      produced: { 'business.vatNumber': 'SE559100000401' },
    });
    expect(await vat('5591000004')).toMatchObject({
      produced: { 'business.vatNumber': 'SE559100000401' },
    });
    expect(
      await runner.handle(stepJob('register-employer', { 'business.orgNumber': '5591000004' }), {
        signal,
      }),
    ).toMatchObject({ produced: { 'business.employerId': '559100-0004' } });
  });

  it('refuses an incomplete application, naming the fact but not quoting it', async () => {
    const { runner } = runnerFor('skatteverket');
    const outcome = await runner.handle(
      stepJob('register-vat', { 'business.orgNumber': '123-not-a-number' }),
      { signal },
    );
    expect(outcome).toEqual({
      outcome: 'rejected',
      code: 'incomplete-application',
      reason: 'business.orgNumber is missing or not valid',
      reference: expect.any(String),
    });
    expect(JSON.stringify(outcome)).not.toContain('123-not-a-number');
  });

  it("routes the municipality's applications by municipality code or postal code", async () => {
    expect(municipalityOf({ 'business.premisesMunicipalityCode': '0780' })).toBe('0780');
    expect(
      municipalityOf({
        'person.address': { street: 'A 1', postalCode: '113 51', town: 'Stockholm' },
      }),
    ).toBe('0180');
    expect(municipalityOfPostalCode('411 14')).toBe('1480');
    expect(municipalityOfPostalCode('01234')).toBeUndefined();
    const { runner } = runnerFor('kommun');
    const outcome = await runner.handle(
      stepJob('notify-new-business', {
        'business.orgNumber': '199012119948',
        'person.address': ADDRESS,
      }),
      { signal },
    );
    expect(outcome).toMatchObject({
      outcome: 'completed',
      reference: expect.stringMatching(/^KOM-0780-2026-/),
    });
  });

  it('keeps the registers consistent: the same person gives the same entries', () => {
    const today = new Date('2026-02-02T10:00:00Z');
    expect(deathRecord('190905271474', today)).toEqual(deathRecord('190905271474', today));
    expect(vehiclesOwnedBy('190905271474')).toEqual(vehiclesOwnedBy('190905271474'));
    const plates = Array.from({ length: 200 }, (_, i) => vehiclesOwnedBy(`x${i}`)).flat();
    expect(plates.length).toBeGreaterThan(50);
    for (const plate of plates) expect(plate).toMatch(/^[A-HJ-PR-UW-Z]{3}\d{2}[0-9A-HJ-NPR-UW-Z]$/);
    expect(swedishDate(new Date('2026-01-31T23:30:00Z'))).toBe('2026-02-01');
  });
});

describe('the runner: ledger, idempotency, failures and decisions', () => {
  const fTax = { 'business.orgNumber': '199012119948', 'business.expectedTurnover': 500000 };

  it('records every request, makes the effect once per key and answers a repeat with the recorded answer', async () => {
    const { runner, ledger } = runnerFor('skatteverket');
    const job = stepJob('register-employer', { 'business.orgNumber': '199012119948' });
    const first = await runner.handle(job, { signal });
    const again = await runner.handle(job, { signal });
    const retry = await runner.handle({ ...job, attempt: 2 }, { signal });
    expect(again).toEqual(first);
    expect(retry).toEqual(first);
    expect(ledger.requests).toHaveLength(3);
    expect(ledger.effects.size).toBe(1);
    expect(ledger.requests.map((r) => r.job.facts)).toEqual([job.facts, job.facts, job.facts]);
  });

  it('refuses a key reused for another action', async () => {
    const { runner } = runnerFor('skatteverket');
    const job = stepJob('register-employer', { 'business.orgNumber': '199012119948' });
    await runner.handle(job, { signal });
    expect(await runner.handle({ ...job, action: 'register-vat' }, { signal })).toMatchObject({
      outcome: 'rejected',
      code: 'idempotency-conflict',
    });
  });

  it('answers unavailable at the failure rate, before any effect, drawing from the random source', async () => {
    const draws = [0.29, 0.31];
    const { runner, ledger } = runnerFor(
      'skatteverket',
      { failureRate: 0.3 },
      () => draws.shift() ?? 0.99,
    );
    const job = stepJob('register-employer', { 'business.orgNumber': '199012119948' });
    expect(await runner.handle(job, { signal })).toEqual({
      outcome: 'retryable-error',
      code: 'unavailable',
      reason: 'skatteverket is temporarily unavailable',
    });
    expect(ledger.effects.size).toBe(0);
    expect(await runner.handle({ ...job, attempt: 2 }, { signal })).toMatchObject({
      outcome: 'completed',
    });
    expect(ledger.requests).toHaveLength(2);
    expect(ledger.effects.size).toBe(1);
  });

  it('answers F-tax pending, then decides it when due and reports the decision for the latest attempt', async () => {
    const { runner, ledger, clock } = runnerFor('skatteverket', { decisionDelayMs: 5_000 });
    const job = stepJob('register-f-tax', fTax);
    const pending = await runner.handle(job, { signal });
    expect(pending).toEqual({
      outcome: 'pending',
      reference: expect.stringMatching(/^SKV-2026-/),
      expectedDecisionAt: '2026-02-02T10:00:05.000Z',
    });
    // A second attempt while undecided gets the same answer, and the decision will answer it.
    expect(await runner.handle({ ...job, attempt: 2 }, { signal })).toEqual(pending);

    const decide = (effect: EffectRecord, application: Application) =>
      runner.decideLater(effect, application);
    expect(await ledger.decideDue(10, ['skatteverket'], decide)).toBe(0);
    clock.now = new Date('2026-02-02T10:00:05Z');
    expect(await ledger.decideDue(10, ['skatteverket'], decide)).toBe(1);
    const reported: EffectRecord[] = [];
    expect(
      await ledger.reportDecisions(10, ['skatteverket'], async (e) => void reported.push(e)),
    ).toBe(1);
    expect(reported).toHaveLength(1);
    expect(reported[0]).toMatchObject({ stepRunId: job.stepRunId, attempt: 2 });
    expect(reported[0]?.decision).toEqual({
      outcome: 'completed',
      produced: { 'business.fTaxStatus': { taxForm: 'F', validFrom: '2026-02-02' } },
      reference: (pending as { reference: string }).reference,
    });
    // Reported once; a repeat now gets the decision.
    expect(await ledger.reportDecisions(10, ['skatteverket'], async () => undefined)).toBe(0);
    expect(await runner.handle({ ...job, attempt: 3 }, { signal })).toEqual(reported[0]?.decision);
    expect(ledger.effects.size).toBe(1);
  });

  it('decides at once when the decision delay is 0', async () => {
    const { runner } = runnerFor('skatteverket', { decisionDelayMs: 0 });
    expect(await runner.handle(stepJob('register-f-tax', fTax), { signal })).toMatchObject({
      outcome: 'completed',
      produced: { 'business.fTaxStatus': { taxForm: 'F', validFrom: '2026-02-02' } },
    });
  });

  it('refuses a refusable decision at the rejection rate, and only a refusable one', async () => {
    const licence = {
      'business.orgNumber': '199012119948',
      'business.name': 'Krogen',
      'person.name': NAME,
      'person.personalNumber': '199012119948',
      'business.premisesAddress': PREMISES,
      'business.premisesMunicipalityCode': '0780',
    };
    const draws = [0.09, 0.11];
    const { runner } = runnerFor('kommun', { rejectionRate: 0.1 }, () => draws.shift() ?? 0);
    expect(
      await runner.handle(stepJob('apply-alcohol-licence', licence), { signal }),
    ).toMatchObject({
      outcome: 'rejected',
      code: 'licence-refused',
      reference: expect.stringMatching(/^KOM-0780-/),
    });
    expect(
      await runner.handle(stepJob('apply-alcohol-licence', licence), { signal }),
    ).toMatchObject({
      outcome: 'completed',
    });
    const always = runnerFor('kommun', { rejectionRate: 1 }, () => 0).runner;
    expect(
      await always.handle(
        stepJob('register-food-premises', {
          'business.orgNumber': '199012119948',
          'business.name': 'Krogen',
          'business.sniCode': '56100',
          'business.premisesAddress': PREMISES,
          'business.premisesMunicipalityCode': '0780',
        }),
        { signal },
      ),
    ).toMatchObject({ outcome: 'completed' });
  });

  it('withdraws an undecided application when leo cancels the step: it is never reported', async () => {
    const { runner, ledger, clock } = runnerFor('kommun', { decisionDelayMs: 1_000 });
    const job = stepJob('preschool-queue', {
      'person.personalNumber': '199012119948',
      'person.municipalityCode': '0780',
      'child.personalNumber': '198211059954',
      'child.preschoolStartDate': '2027-08-16',
    });
    expect(await runner.handle(job, { signal })).toMatchObject({ outcome: 'pending' });
    const logged: string[] = [];
    const log = {
      info: (_: object, m: string) => void logged.push(m),
      warn: () => undefined,
      error: () => undefined,
    };
    await runner.cancel({ ...job, reason: 'cancelled by the citizen' }, log);
    expect(logged).toEqual(['application withdrawn']);
    clock.now = new Date(clock.now.getTime() + 2_000);
    expect(await ledger.decideDue(10, ['kommun'], (e, a) => runner.decideLater(e, a))).toBe(0);
    expect(await ledger.reportDecisions(10, ['kommun'], async () => undefined)).toBe(0);
    expect(await runner.handle(job, { signal })).toMatchObject({
      outcome: 'rejected',
      code: 'withdrawn',
    });
  });

  it('waits out the simulated latency, and stops when the attempt is aborted', async () => {
    const { runner } = runnerFor('forsakringskassan', { latencyMs: 60_000 });
    const controller = new AbortController();
    const handled = runner.handle(stepJob('notify-death', {}), { signal: controller.signal });
    controller.abort(new Error('timeout'));
    await expect(handled).rejects.toThrow();
  });
});
