import { describe, expect, it } from '@jest/globals';
import {
  ADAPTER_MISCONFIGURED,
  UNKNOWN_ACTION,
  type FactValue,
  type StepOutcome,
} from '#agency-contract';
import { FORMAT_CHECKS } from '#facts';
import type { Agency, AgencyAction, MockBehaviour } from '#workflow';
import type { MockAgenciesConfig } from '../config/config.schema.js';
import {
  MOCK_AGENCIES,
  composeMock,
  configuredAction,
  fillTemplate,
  sampleProduced,
  unservedActions,
  type MockAgency,
  organisationNumberFromSequence,
} from '#mock-agencies';
import { MockAgencyRunner } from './mock-agency-runner.js';
import { MemoryLedger, stepJob } from '../../test/support/memory-ledger.js';
import type { Application, EffectRecord } from './mock-ledger.repository.js';

// ---- agencies and runners -------------------------------------------------------------------------

const SETTINGS: MockAgenciesConfig = {
  latencyMs: 0,
  failureRate: 0,
  decisionDelayMs: 0,
  rejectionRate: 0,
};

/** Late in the evening of 31 January in UTC: already 1 February in Sweden. */
const NOW = new Date('2026-01-31T23:30:00Z');

const FARM_PRODUCES = ['farm.id', 'farm.registeredOn', 'farm.reference', 'farm.kind', 'farm.owner'];

const FARM_MOCK: MockBehaviour = {
  requires: ['person.personalNumber'],
  produce: {
    'farm.id': { generate: 'organisation-number' },
    'farm.registeredOn': { generate: 'today' },
    'farm.reference': { generate: 'reference' },
    'farm.kind': { value: { type: 'dairy', cows: [1, 2], organic: true } },
    'farm.owner': { from: 'person.name' },
  },
};

function action(name: string, produces: string[], mock?: MockBehaviour): AgencyAction {
  return { name, title: { sv: name, en: name }, produces, ...(mock ? { mock } : {}) };
}

/** Jordbruksverket: no mock built into leo, so only what is configured. */
function jordbruksverket(...actions: AgencyAction[]): Agency {
  return {
    code: 'jordbruksverket',
    name: { sv: 'Jordbruksverket', en: 'Swedish Board of Agriculture' },
    adapter: 'mock',
    actions,
    lookups: [],
  };
}

function runnerOf(
  entry: Agency,
  settings: Partial<MockAgenciesConfig> = {},
  random: () => number = () => 0.5,
  clock = { now: NOW },
) {
  const ledger = new MemoryLedger(() => clock.now, 0);
  const mock = composeMock(entry, MOCK_AGENCIES.get(entry.code));
  const runner = new MockAgencyRunner(
    mock,
    ledger,
    { ...SETTINGS, ...settings },
    random,
    () => clock.now,
  );
  return { runner, ledger, clock, mock };
}

const signal = new AbortController().signal;
const PN = '199012119948';
const FARMER = { 'person.personalNumber': PN, 'person.name': 'Anna Lindqvist' };

function produced(outcome: StepOutcome): Record<string, FactValue> {
  if (outcome.outcome !== 'completed') throw new Error(`not completed: ${JSON.stringify(outcome)}`);
  return outcome.produced;
}

// ---- the tests --------------------------------------------------------------------------------

describe('a configured action', () => {
  it('produces each fact by its rule: a value, from a fact, or generated', async () => {
    const { runner } = runnerOf(jordbruksverket(action('register-farm', FARM_PRODUCES, FARM_MOCK)));
    const outcome = await runner.handle(stepJob('register-farm', FARMER), { signal });
    expect(outcome).toMatchObject({
      outcome: 'completed',
      reference: expect.stringMatching(/^JOR-2026-[0-9A-F]{10}$/),
    });
    const facts = produced(outcome);
    expect(Object.keys(facts).sort()).toEqual([...FARM_PRODUCES].sort());
    expect(facts['farm.reference']).toBe((outcome as { reference: string }).reference);
    expect(facts['farm.kind']).toEqual({ type: 'dairy', cows: [1, 2], organic: true });
    expect(facts['farm.owner']).toBe('Anna Lindqvist');
    // The date in Sweden, not in UTC.
    expect(facts['farm.registeredOn']).toBe('2026-02-01');
    expect(facts['farm.registeredOn']).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    const orgNumber = facts['farm.id'];
    expect(orgNumber).toBe(organisationNumberFromSequence(1));
    expect(typeof orgNumber === 'string' && FORMAT_CHECKS.organisationsnummer(orgNumber)).toBe(
      true,
    );
  });

  it('gives each application a new organisation number and its own reference', async () => {
    const { runner } = runnerOf(jordbruksverket(action('register-farm', FARM_PRODUCES, FARM_MOCK)));
    const outcomes = await Promise.all(
      [1, 2, 3].map(() => runner.handle(stepJob('register-farm', FARMER), { signal })),
    );
    const facts = outcomes.map(produced);
    expect(new Set(facts.map((f) => f['farm.id'])).size).toBe(3);
    expect(new Set(facts.map((f) => f['farm.reference'])).size).toBe(3);
    outcomes.forEach((outcome, i) => {
      expect(facts[i]?.['farm.reference']).toBe((outcome as { reference: string }).reference);
    });
  });

  it('answers a repeat of the same key with the recorded answer', async () => {
    const { runner, ledger } = runnerOf(
      jordbruksverket(action('register-farm', FARM_PRODUCES, FARM_MOCK)),
    );
    const job = stepJob('register-farm', FARMER);
    const first = await runner.handle(job, { signal });
    expect(await runner.handle({ ...job, attempt: 2 }, { signal })).toEqual(first);
    expect(ledger.effects.size).toBe(1);
  });

  it.each([
    ['a required fact is missing', { 'person.name': 'Anna Lindqvist' }, 'person.personalNumber'],
    [
      'a required fact is empty',
      { ...FARMER, 'person.personalNumber': '' },
      'person.personalNumber',
    ],
    [
      'a required fact is null',
      { ...FARMER, 'person.personalNumber': null },
      'person.personalNumber',
    ],
    ['the fact a value comes from is missing', { 'person.personalNumber': PN }, 'person.name'],
  ])('refuses the application as incomplete when %s, naming the fact', async (_, facts, key) => {
    const { runner } = runnerOf(jordbruksverket(action('register-farm', FARM_PRODUCES, FARM_MOCK)));
    expect(await runner.handle(stepJob('register-farm', facts), { signal })).toEqual({
      outcome: 'rejected',
      code: 'incomplete-application',
      reason: `${key} is missing or not valid`,
      reference: expect.stringMatching(/^JOR-/),
    });
  });

  it('takes false and 0 as present', async () => {
    const mock: MockBehaviour = {
      requires: ['farm.organic', 'farm.cows'],
      produce: { 'farm.kind': { from: 'farm.organic' } },
    };
    const { runner } = runnerOf(jordbruksverket(action('register-farm', ['farm.kind'], mock)));
    const outcome = await runner.handle(
      stepJob('register-farm', { 'farm.organic': false, 'farm.cows': 0 }),
      { signal },
    );
    expect(produced(outcome)).toEqual({ 'farm.kind': false });
  });

  it('refuses every application at refusal rate 1, with the configured code and reason', async () => {
    const mock: MockBehaviour = {
      ...FARM_MOCK,
      refusal: { rate: 1, code: 'farm-refused', reason: 'The farm does not qualify' },
    };
    const { runner } = runnerOf(
      jordbruksverket(action('register-farm', FARM_PRODUCES, mock)),
      {},
      () => 0.999,
    );
    expect(await runner.handle(stepJob('register-farm', FARMER), { signal })).toEqual({
      outcome: 'rejected',
      code: 'farm-refused',
      reason: 'The farm does not qualify',
      reference: expect.stringMatching(/^JOR-2026-/),
    });
  });

  it('refuses at its own rate, drawing from the random source, instead of MOCK_REJECTION_RATE', async () => {
    const refusal = { code: 'farm-refused', reason: 'The farm does not qualify' };
    const half = jordbruksverket(
      action('register-farm', FARM_PRODUCES, { ...FARM_MOCK, refusal: { rate: 0.5, ...refusal } }),
    );
    const draws = [0.49, 0.51];
    const { runner } = runnerOf(half, { rejectionRate: 0 }, () => draws.shift() ?? 0);
    expect(await runner.handle(stepJob('register-farm', FARMER), { signal })).toMatchObject({
      outcome: 'rejected',
      code: 'farm-refused',
    });
    expect(await runner.handle(stepJob('register-farm', FARMER), { signal })).toMatchObject({
      outcome: 'completed',
    });

    // Rate 0 is never refused, whatever MOCK_REJECTION_RATE says.
    const never = jordbruksverket(
      action('register-farm', FARM_PRODUCES, { ...FARM_MOCK, refusal: { rate: 0, ...refusal } }),
    );
    const always = runnerOf(never, { rejectionRate: 1 }, () => 0).runner;
    expect(await always.handle(stepJob('register-farm', FARMER), { signal })).toMatchObject({
      outcome: 'completed',
    });
  });

  it('refuses an incomplete application as incomplete, not with its configured refusal', async () => {
    const mock: MockBehaviour = {
      ...FARM_MOCK,
      refusal: { rate: 1, code: 'farm-refused', reason: 'No' },
    };
    const { runner } = runnerOf(jordbruksverket(action('register-farm', FARM_PRODUCES, mock)));
    expect(
      await runner.handle(stepJob('register-farm', { 'person.name': 'A' }), { signal }),
    ).toMatchObject({ outcome: 'rejected', code: 'incomplete-application' });
  });

  it('answers pending when decided later, and decides when due with the same reference', async () => {
    const mock: MockBehaviour = { ...FARM_MOCK, decidedAfter: 'PT2H' };
    const clock = { now: NOW };
    // MOCK_DECISION_DELAY_MS 0 would decide a built-in action at once: the configured delay wins.
    const { runner, ledger } = runnerOf(
      jordbruksverket(action('register-farm', FARM_PRODUCES, mock)),
      { decisionDelayMs: 0 },
      () => 0.5,
      clock,
    );
    const pending = await runner.handle(stepJob('register-farm', FARMER), { signal });
    expect(pending).toEqual({
      outcome: 'pending',
      reference: expect.stringMatching(/^JOR-2026-/),
      expectedDecisionAt: new Date(NOW.getTime() + 2 * 3_600_000).toISOString(),
    });
    const decide = (effect: EffectRecord, application: Application) =>
      runner.decideLater(effect, application);
    clock.now = new Date(NOW.getTime() + 2 * 3_600_000 - 1);
    expect(await ledger.decideDue(10, ['jordbruksverket'], decide)).toBe(0);
    clock.now = new Date(NOW.getTime() + 2 * 3_600_000);
    expect(await ledger.decideDue(10, ['jordbruksverket'], decide)).toBe(1);
    const [effect] = [...ledger.effects.values()];
    const reference = (pending as { reference: string }).reference;
    expect(effect?.decision).toMatchObject({ outcome: 'completed', reference });
    const facts = produced(effect?.decision as StepOutcome);
    expect(facts['farm.reference']).toBe(reference);
    expect(facts['farm.owner']).toBe('Anna Lindqvist');
  });

  it('is decided at once without decidedAfter, whatever MOCK_DECISION_DELAY_MS says', async () => {
    const { runner } = runnerOf(
      jordbruksverket(action('register-farm', FARM_PRODUCES, FARM_MOCK)),
      { decisionDelayMs: 60_000 },
    );
    expect(await runner.handle(stepJob('register-farm', FARMER), { signal })).toMatchObject({
      outcome: 'completed',
    });
  });

  it('waits its own latency instead of MOCK_AGENCY_LATENCY_MS', async () => {
    const slow = runnerOf(
      jordbruksverket(action('register-farm', FARM_PRODUCES, { ...FARM_MOCK, latencyMs: 60_000 })),
      { latencyMs: 0 },
    ).runner;
    const controller = new AbortController();
    const handled = slow.handle(stepJob('register-farm', FARMER), { signal: controller.signal });
    controller.abort(new Error('timeout'));
    await expect(handled).rejects.toThrow();

    // latencyMs 0 is no wait, though the setting is a minute (bounded: an abort after 5 s).
    const fast = runnerOf(
      jordbruksverket(action('register-farm', FARM_PRODUCES, { ...FARM_MOCK, latencyMs: 0 })),
      { latencyMs: 60_000 },
    ).runner;
    const bound = AbortSignal.timeout(5_000);
    expect(await fast.handle(stepJob('register-farm', FARMER), { signal: bound })).toMatchObject({
      outcome: 'completed',
    });
  });

  it('maps the behaviour onto the runner’s action settings', () => {
    const farm = action('register-farm', FARM_PRODUCES);
    expect(configuredAction(farm, { latencyMs: 10, decidedAfter: 'P1D' })).toMatchObject({
      latencyMs: 10,
      decidedLater: true,
      decisionDelayMs: 86_400_000,
    });
    const plain = configuredAction(farm, {});
    expect(plain).toMatchObject({ decisionDelayMs: 0 });
    expect(plain).not.toHaveProperty('decidedLater');
    expect(plain).not.toHaveProperty('latencyMs');
    expect(plain).not.toHaveProperty('refusal');
    expect(
      configuredAction(farm, { refusal: { rate: 0.3, code: 'no-way', reason: 'r' } }),
    ).toMatchObject({ refusal: { code: 'no-way', reason: 'r' }, refusalRate: 0.3 });
  });
});

describe('composing a mock from the catalogue and leo’s built-in mock', () => {
  const kommunEntry: Agency = {
    code: 'kommun',
    name: { sv: 'Kommunen', en: 'The municipality' },
    adapter: 'mock',
    actions: [
      action('notify-new-resident', [], {
        refusal: { rate: 1, code: 'not-welcome', reason: 'Configured to refuse' },
      }),
      action('notify-new-business', []),
    ],
    lookups: [],
  };
  const ADDRESS = { street: 'Storgatan 12', postalCode: '352 30', town: 'Växjö' };

  it('lets a configured action take precedence over the built-in one of the same name', async () => {
    const { runner } = runnerOf(kommunEntry);
    const facts = { 'person.personalNumber': PN, 'move.newAddress': ADDRESS };
    expect(await runner.handle(stepJob('notify-new-resident', facts), { signal })).toEqual({
      outcome: 'rejected',
      code: 'not-welcome',
      reason: 'Configured to refuse',
      // The built-in mock's reference prefix and office routing stay.
      reference: expect.stringMatching(/^KOM-0780-2026-/),
    });
    // The built-in one, for comparison, grants it.
    const builtIn = new MockAgencyRunner(
      MOCK_AGENCIES.get('kommun') as MockAgency,
      new MemoryLedger(() => NOW, 0),
      SETTINGS,
      () => 0.5,
      () => NOW,
    );
    expect(await builtIn.handle(stepJob('notify-new-resident', facts), { signal })).toMatchObject({
      outcome: 'completed',
    });
  });

  it('keeps the built-in actions not configured, and the built-in mock’s register', async () => {
    const { runner, mock } = runnerOf(kommunEntry);
    expect(
      await runner.handle(
        stepJob('notify-new-business', {
          'business.orgNumber': PN,
          'person.address': ADDRESS,
        }),
        { signal },
      ),
    ).toMatchObject({ outcome: 'completed' });
    const builtIn = MOCK_AGENCIES.get('kommun') as MockAgency;
    expect(mock.referencePrefix).toBe(builtIn.referencePrefix);
    const facts = { 'business.premisesMunicipalityCode': '1480' };
    expect(mock.officeOf?.(facts)).toBe('1480');
    expect(mock.officeOf?.(facts)).toBe(builtIn.officeOf?.(facts));
    expect(mock.actions['notify-new-business']).toBe(builtIn.actions['notify-new-business']);
    expect(mock.actions['notify-new-resident']).not.toBe(builtIn.actions['notify-new-resident']);
    // The built-in mock is not changed by composing.
    expect(builtIn.actions['notify-new-resident']).not.toHaveProperty('refusalRate');
    const skatteverket = MOCK_AGENCIES.get('skatteverket') as MockAgency;
    const composed = composeMock(
      { ...kommunEntry, code: 'skatteverket', actions: [] },
      skatteverket,
    );
    expect(composed.lookups).toBe(skatteverket.lookups);
  });

  it('makes a reference prefix of the code when leo has no built-in mock', () => {
    expect(composeMock(jordbruksverket(), undefined)).toEqual({
      code: 'jordbruksverket',
      referencePrefix: 'JOR',
      actions: {},
    });
  });

  it('answers an action neither built in nor configured as a retryable configuration fault', async () => {
    const entry = jordbruksverket(
      action('register-farm', FARM_PRODUCES, FARM_MOCK),
      action('register-horse', ['horse.id']),
    );
    const { runner, ledger, mock } = runnerOf(entry);
    expect(unservedActions(entry, mock)).toEqual(['register-horse']);
    expect(Object.keys(runner.handlers())).toEqual(['register-farm']);
    const outcome = await runner.handle(stepJob('register-horse', FARMER), { signal });
    expect(outcome).toEqual({
      outcome: 'retryable-error',
      code: UNKNOWN_ACTION,
      reason: expect.stringContaining('jordbruksverket'),
    });
    expect(UNKNOWN_ACTION).toBe('unknown-action');
    // Nothing is done for it.
    expect(ledger.effects.size).toBe(0);

    // The same of a built-in agency's action leo does not have.
    const kommun = runnerOf({
      ...jordbruksverket(action('issue-parking-permit', [])),
      code: 'kommun',
    }).runner;
    expect(await kommun.handle(stepJob('issue-parking-permit', {}), { signal })).toMatchObject({
      outcome: 'retryable-error',
      code: 'unknown-action',
    });
  });
});

describe('templates, and values their facts refuse', () => {
  it('fills a template: the year and date in Sweden, the reference, random digits and hex', () => {
    const digits = [3, 1, 4, 1, 5, 9, 2, 6];
    let next = 0;
    const filled = fillTemplate(
      'JV-{year}-{digits:6} {date} {reference} {hex:2}',
      { receivedAt: NOW, reference: 'JOR-2026-AB' },
      () => digits[next++ % digits.length] ?? 0,
    );
    expect(filled).toBe('JV-2026-314159 2026-02-01 JOR-2026-AB 26');
  });

  it('answers values its fact refuses as a configuration fault, recording no effect', async () => {
    const template = action('register-dog', ['dog.number'], {
      produce: { 'dog.number': { template: 'JV-{digits:3}' } },
    });
    const entry = jordbruksverket(template);
    const check = (key: string, value: FactValue): string | undefined =>
      key === 'dog.number' && !(typeof value === 'string' && /^JV-\d{6}$/.test(value))
        ? 'must match pattern'
        : undefined;
    const ledger = new MemoryLedger(() => NOW, 0);
    const runner = new MockAgencyRunner(
      composeMock(entry, undefined, check),
      ledger,
      SETTINGS,
      () => 0.5,
      () => NOW,
    );
    const outcome = await runner.handle(stepJob('register-dog', {}), { signal });
    expect(outcome).toEqual({
      outcome: 'retryable-error',
      code: ADAPTER_MISCONFIGURED,
      reason: 'the mock made a value of dog.number that its schema refuses: must match pattern',
    });
    expect(ledger.effects.size).toBe(0);
    expect(ledger.requests).toHaveLength(1);
  });

  it('answers a repeat of an application granted before with its recorded answer, even once misconfigured', async () => {
    const numbered = action('register-dog', ['dog.number'], {
      produce: { 'dog.number': { template: 'JV-{digits:6}' } },
    });
    let fits = true;
    const ledger = new MemoryLedger(() => NOW, 0);
    const runner = new MockAgencyRunner(
      composeMock(jordbruksverket(numbered), undefined, () =>
        fits ? undefined : 'must match pattern',
      ),
      ledger,
      SETTINGS,
      () => 0.5,
      () => NOW,
    );
    const job = stepJob('register-dog', {});
    const first = await runner.handle(job, { signal });
    expect(first).toMatchObject({ outcome: 'completed' });
    fits = false; // the fact's schema changed since
    expect(await runner.handle({ ...job, attempt: 2 }, { signal })).toEqual(first);
  });

  it('says so at receipt for an action decided later, not after the delay', async () => {
    const later = action('register-dog', ['dog.number'], {
      decidedAfter: 'PT1H',
      produce: { 'dog.number': { value: 'nope' } },
    });
    const runner = new MockAgencyRunner(
      composeMock(jordbruksverket(later), undefined, () => 'must match pattern'),
      new MemoryLedger(() => NOW, 0),
      SETTINGS,
      () => 0.5,
      () => NOW,
    );
    const outcome = await runner.handle(stepJob('register-dog', {}), { signal });
    expect(outcome).toMatchObject({ outcome: 'retryable-error', code: ADAPTER_MISCONFIGURED });
  });

  it('samples every rule but from, for checking a configuration before it is saved', async () => {
    const [sampled = {}] = await sampleProduced(
      jordbruksverket(action('register-farm', FARM_PRODUCES, FARM_MOCK)),
      action('register-farm', FARM_PRODUCES, FARM_MOCK),
      NOW,
    );
    expect(Object.keys(sampled).sort()).toEqual(
      ['farm.id', 'farm.kind', 'farm.reference', 'farm.registeredOn'].sort(),
    );
    expect(sampled['farm.reference']).toBe('JOR-2026-0123456789');
    const id = sampled['farm.id'];
    expect(typeof id === 'string' && FORMAT_CHECKS.organisationsnummer(id)).toBe(true);
  });

  it("samples a template at its random characters' extremes", async () => {
    const numbered = action('register-dog', ['dog.number'], {
      produce: { 'dog.number': { template: 'JV-{digits:3}-{hex:2}' } },
    });
    const samples = await sampleProduced(jordbruksverket(numbered), numbered, NOW);
    expect(samples).toEqual([{ 'dog.number': 'JV-000-00' }, { 'dog.number': 'JV-999-FF' }]);
  });
});
