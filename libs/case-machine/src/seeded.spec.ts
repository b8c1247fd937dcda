/**
 * The seeded life events of config/ on the case machine: the standard workload's start-business
 * case from opening to completion, and the municipality's steps, each routed to the municipality
 * its code names (decision 0024).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { parse as parseYaml } from 'yaml';
import { AGENCY_NOT_ONBOARDED, type FactValue, type StepOutcome } from '#agency-contract';
import { createFactValidator, parseAgencies, parseFactCatalogue } from '#facts';
import { validate, withDefaults, type Catalogue, type LifeEventDefinition } from '#workflow';
import {
  CaseDriver,
  PN,
  T0,
  changed,
  completed,
  deterministicEnv,
  effects,
  kinds,
  must,
  retryable,
  type Changed,
  type EffectOf,
} from '../test/driver.js';
import {
  buildPreview,
  isHeldByConfigurationFault,
  isHeldNotOnboarded,
  resolve,
  usableFacts,
  type Environment,
} from './index.js';

const HOUR = 3_600_000;

describe('the seeded start-business life event', () => {
  const configUrl = new URL('../../../config/', import.meta.url);
  const read = (name: string) => readFileSync(new URL(name, configUrl), 'utf8');
  const { facts } = parseFactCatalogue(read('facts.yaml'));
  const { agencies } = parseAgencies(read('agencies.yaml'));
  const catalogue: Catalogue = {
    facts: new Map(facts.map((f) => [f.key, f])),
    agencies: new Map(agencies.map((a) => [a.code, a])),
  };
  const source = parseYaml(read('life-events/start-business.yaml')) as LifeEventDefinition;
  const definition = withDefaults(source);
  const validator = createFactValidator(facts);
  const env = (overrides: Partial<Environment> = {}): Environment =>
    deterministicEnv({ definition, catalogue, validator }, overrides);

  /** The standard workload's answers (a sole trader with staff, no food). */
  const WORKLOAD_ANSWERS = {
    'business.name': 'Adas Kaffe',
    'business.legalForm': 'enskild-naringsidkare',
    'business.sniCode': '56100',
    'business.expectedTurnover': 500_000,
    'business.willEmployStaff': true,
    'business.servesFood': false,
    'business.servesAlcohol': false,
  };

  const REGISTER = {
    'person.name': { givenName: 'Ada', surname: 'Lovelace' },
    'person.address': { street: 'Storgatan 1', postalCode: '11122', town: 'Stockholm' },
    'person.municipalityCode': '0180',
  };
  /** What each agency answers (a decision step: pending first, then the decision). */
  const PRODUCED: Record<string, Record<string, FactValue>> = {
    'register-sole-trader': { 'business.orgNumber': PN },
    'f-tax': { 'business.fTaxStatus': { taxForm: 'F', validFrom: '2025-04-01' } },
    'vat-registration': { 'business.vatNumber': 'SE901211994801' },
    'employer-registration': { 'business.employerId': PN },
    'business-notice': {},
  };

  it('validates against the seeded catalogue', () => {
    expect(validate(source, catalogue).filter((d) => d.severity === 'error')).toEqual([]);
  });

  it('runs the standard workload (a sole trader with staff) to completion', () => {
    const driver = new CaseDriver(env());
    changed(driver.open(WORKLOAD_ANSWERS));
    const lookup = must(driver.state.lookups[0], 'look-up');
    expect(lookup.agency).toBe('skatteverket');
    expect([...lookup.factKeys].sort()).toEqual([
      'person.address',
      'person.municipalityCode',
      'person.name',
    ]);
    changed(
      driver.apply(driver.lookupResult({ outcome: 'found', facts: REGISTER }, 1, 'skatteverket')),
    );
    expect(driver.record('person.address').value).toMatchObject({ postalCode: '111 22' });

    const submitted = changed(driver.apply(driver.submitInput()));
    expect(kinds(submitted.events).filter((k) => k.startsWith('step-'))).toEqual([
      'step-dispatched:register-sole-trader',
      'step-skipped:register-limited-company',
      'step-skipped:food-premises',
      'step-skipped:alcohol-licence',
    ]);

    const queue: Array<EffectOf<'dispatch-step'>> = [...effects(submitted, 'dispatch-step')];
    let inputs = 0;
    for (let job = queue.shift(); job !== undefined; job = queue.shift()) {
      const step = must(
        definition.steps.find((s) => s.id === job.job.stepId),
        job.job.stepId,
      );
      expect(Object.keys(job.job.facts).sort()).toEqual([...step.needs].sort());
      // The municipality's step goes to Stockholm's own queue (decision 0024).
      expect(job.agency).toBe(step.agency === 'kommun' ? 'kommun-0180' : step.agency);
      const answer = (outcome: StepOutcome): Changed => {
        inputs++;
        return changed(driver.apply(driver.result(step.id, outcome)));
      };
      if (step.kind === 'decision') {
        answer({ outcome: 'pending', reference: `${step.id}-ref` });
      }
      const done = answer(completed(must(PRODUCED[step.id], `answer of ${step.id}`)));
      queue.push(...effects(done, 'dispatch-step'));
    }
    expect(inputs).toBe(9);
    expect(driver.status).toBe('completed');
    expect(Object.fromEntries(driver.state.runs.map((r) => [r.stepId, r.state]))).toEqual({
      'register-sole-trader': 'completed',
      'register-limited-company': 'skipped',
      'f-tax': 'completed',
      'vat-registration': 'completed',
      'employer-registration': 'completed',
      'food-premises': 'skipped',
      'alcohol-licence': 'skipped',
      'business-notice': 'completed',
    });
  });

  // ---- the municipality: an agency of many (decision 0024) ------------------------------------

  /** The workload's case, up to the municipality's step: every step before it completed. */
  function upToBusinessNotice(municipality: string, overrides: Partial<Environment> = {}) {
    const driver = new CaseDriver(env(overrides));
    changed(driver.open(WORKLOAD_ANSWERS));
    const register = { ...REGISTER, 'person.municipalityCode': municipality };
    changed(
      driver.apply(driver.lookupResult({ outcome: 'found', facts: register }, 1, 'skatteverket')),
    );
    changed(driver.apply(driver.submitInput()));
    changed(
      driver.apply(
        driver.result('register-sole-trader', completed(PRODUCED['register-sole-trader'] ?? {})),
      ),
    );
    let last: Changed | undefined;
    for (const id of ['f-tax', 'vat-registration', 'employer-registration']) {
      last = changed(driver.apply(driver.result(id, completed(PRODUCED[id] ?? {}))));
    }
    return { driver, last: must(last, 'the last tax step') };
  }

  /** The catalogue with `ids` the municipalities onboarded. */
  function onboarded(ids: string[]): Catalogue {
    const kommun = must(catalogue.agencies.get('kommun'), 'kommun');
    const instances = must(kommun.instances, 'kommun instances');
    return {
      facts: catalogue.facts,
      agencies: new Map(catalogue.agencies).set('kommun', {
        ...kommun,
        instances: {
          ...instances,
          onboarded: ids.map((id) => ({
            id,
            name: { sv: `Kommun ${id}`, en: `Municipality ${id}` },
          })),
        },
      }),
    };
  }

  it('sends the municipality step to the municipality its code names, and takes its answer only from it', () => {
    const { driver, last } = upToBusinessNotice('1480');
    const [job] = effects(last, 'dispatch-step');
    expect(job?.agency).toBe('kommun-1480');
    expect(effects(last, 'disclose').map((d) => d.disclosure.agency)).toEqual(['kommun-1480']);
    expect(driver.run('business-notice').agency).toBe('kommun-1480');
    const dispatched = last.events.find((e) => e.type === 'step-dispatched');
    expect(dispatched?.data).toMatchObject({ agency: 'kommun-1480' });

    // Another municipality, or the family's own code, cannot answer it.
    const answer = driver.result('business-notice', completed({}));
    for (const agency of ['kommun-0180', 'kommun']) {
      if (answer.type !== 'step-result') throw new Error('a step result');
      const from = { ...answer, result: { ...answer.result, agency } };
      expect(driver.apply(from)).toEqual({ outcome: 'unchanged', reason: 'from another agency' });
    }
    changed(driver.apply(answer));
    expect(driver.status).toBe('completed');
  });

  it('holds a step to a municipality not onboarded: nothing leaves leo, the citizen sees it delayed', () => {
    const { driver, last } = upToBusinessNotice('0114');
    expect(effects(last, 'dispatch-step')).toEqual([]);
    expect(effects(last, 'disclose')).toEqual([]);
    const fault = last.events.find((e) => e.type === 'step-configuration-fault');
    expect(fault).toEqual({
      type: 'step-configuration-fault',
      stepId: 'business-notice',
      data: {
        code: AGENCY_NOT_ONBOARDED,
        agency: 'kommun-0114',
        action: 'notify-new-business',
        attempt: 1,
        delayMs: 0,
      },
    });
    const run = driver.run('business-notice');
    expect(run).toMatchObject({
      state: 'ready',
      agency: 'kommun',
      lastError: AGENCY_NOT_ONBOARDED,
    });
    expect(run.disclosedFactIds).toEqual([]);
    expect(isHeldByConfigurationFault(run)).toBe(true);
    expect(isHeldNotOnboarded(run)).toBe(true);
    // Asked again while still not onboarded: nothing happens, no event piles up.
    expect(driver.apply({ type: 'route-held' }, HOUR)).toEqual({
      outcome: 'unchanged',
      reason: 'no step waits for an instance now onboarded',
    });
  });

  it('sends a held step once its municipality is onboarded, keeping its deadline', () => {
    const { driver } = upToBusinessNotice('0114');
    const deadline = driver.run('business-notice').deadlineAt;
    expect(deadline).not.toBeNull();
    driver.env = { ...driver.env, catalogue: onboarded(['0180', '0114']) };
    const released = changed(driver.apply({ type: 'route-held' }, 2 * HOUR));
    const [job] = effects(released, 'dispatch-step');
    expect(job).toMatchObject({ agency: 'kommun-0114', job: { attempt: 1 } });
    expect(Object.keys(job?.job.facts ?? {}).sort()).toEqual([
      'business.orgNumber',
      'person.address',
      'person.municipalityCode',
    ]);
    expect(effects(released, 'disclose').map((d) => d.disclosure.agency)).toEqual(['kommun-0114']);
    expect(driver.run('business-notice')).toMatchObject({
      state: 'ready',
      agency: 'kommun-0114',
      lastError: null,
      deadlineAt: deadline,
    });
    changed(driver.apply(driver.result('business-notice', completed({}))));
    expect(driver.status).toBe('completed');
  });

  it('tells no agency of a held step when the case is cancelled', () => {
    const { driver } = upToBusinessNotice('0114');
    const cancelled = changed(
      driver.apply({ type: 'cancel', reason: 'changed my mind', by: 'citizen' }),
    );
    expect(effects(cancelled, 'cancel-step')).toEqual([]);
    expect(driver.run('business-notice').state).toBe('cancelled');
  });

  it('retries a step at the municipality it first went to, even when that one is later let go', () => {
    const { driver } = upToBusinessNotice('1480');
    driver.env = { ...driver.env, catalogue: onboarded(['0180']) };
    const retried = changed(driver.apply(driver.result('business-notice', retryable)));
    expect(effects(retried, 'dispatch-step').map((e) => [e.agency, e.job.attempt])).toEqual([
      ['kommun-1480', 2],
    ]);
  });

  it('previews a step whose condition the answers already decide as certain, not conditional', () => {
    const driver = new CaseDriver(env());
    changed(driver.open(WORKLOAD_ANSWERS));
    changed(
      driver.apply(driver.lookupResult({ outcome: 'found', facts: REGISTER }, 1, 'skatteverket')),
    );
    const facts = usableFacts(
      driver.state.facts.values(),
      catalogue,
      driver.state.caseRecord.id,
      T0.getTime(),
    );
    const resolution = resolve({ definition, catalogue, facts, lookups: driver.state.lookups });
    const preview = buildPreview({ definitionId: 'def-1', definition, facts, resolution });
    const conditional = Object.fromEntries(preview.steps.map((s) => [s.stepId, s.conditional]));
    // Turnover 500 000 is over the VAT threshold and the business employs: both will run, once
    // the organisation number is there, whatever else happens.
    expect(conditional).toMatchObject({
      'vat-registration': false,
      'employer-registration': false,
      'business-notice': false,
    });
    expect(Object.keys(conditional)).not.toContain('food-premises');
  });
});
