import { describe, expect, it } from '@jest/globals';
import { CATALOGUE, WORKLOAD, WORKLOAD_FACTS, stepAt, workloadCopy } from '../test/fixtures.js';
import {
  dependencies,
  evaluateCondition,
  plan,
  validate,
  type Plan,
  type PlannedStatus,
  type StepState,
} from './index.js';

type States = Record<string, StepState>;

function statuses(p: Plan): Record<string, PlannedStatus> {
  return Object.fromEntries(p.steps.map((s) => [s.id, s.status]));
}

describe('dependencies', () => {
  it('is after plus the producers of needs, sorted, in definition order', () => {
    expect([...dependencies(WORKLOAD)]).toEqual([
      ['register-business', []],
      ['f-tax', ['register-business']],
      ['vat', ['register-business']],
      ['employer', ['register-business']],
      ['food-premises', []],
      ['business-notice', ['employer', 'f-tax', 'register-business', 'vat']],
    ]);
  });
});

describe('plan', () => {
  it('walks the benchmark workload: A; then B, C and D together; E skipped; F last', () => {
    const known: Record<string, unknown> = { ...WORKLOAD_FACTS };
    const states: States = {};

    const first = plan(WORKLOAD, known, states, CATALOGUE);
    expect(first).toEqual({
      steps: [
        { id: 'register-business', status: 'ready', waitingFor: [], missingFacts: [] },
        { id: 'f-tax', status: 'waiting', waitingFor: ['register-business'], missingFacts: [] },
        { id: 'vat', status: 'waiting', waitingFor: ['register-business'], missingFacts: [] },
        { id: 'employer', status: 'waiting', waitingFor: ['register-business'], missingFacts: [] },
        { id: 'food-premises', status: 'skipped', waitingFor: [], missingFacts: [] },
        {
          id: 'business-notice',
          status: 'waiting',
          waitingFor: ['employer', 'f-tax', 'register-business', 'vat'],
          missingFacts: [],
        },
      ],
      missing: { citizen: [], lookup: [] },
      complete: false,
    });

    states['register-business'] = 'dispatched';
    expect(statuses(plan(WORKLOAD, known, states, CATALOGUE))).toMatchObject({
      'register-business': 'in-progress',
      'f-tax': 'waiting',
    });

    states['register-business'] = 'completed';
    states['food-premises'] = 'skipped';
    known['business.orgNumber'] = '9001011234';
    const second = plan(WORKLOAD, known, states, CATALOGUE);
    expect(statuses(second)).toEqual({
      'register-business': 'completed',
      'f-tax': 'ready',
      vat: 'ready',
      employer: 'ready',
      'food-premises': 'skipped',
      'business-notice': 'waiting',
    });
    expect(second.steps[5]?.waitingFor).toEqual(['employer', 'f-tax', 'vat']);

    states['f-tax'] = 'awaiting-decision';
    states.vat = 'completed';
    states.employer = 'completed';
    const third = plan(WORKLOAD, known, states, CATALOGUE);
    expect(statuses(third)['f-tax']).toBe('in-progress');
    expect(third.steps[5]).toEqual({
      id: 'business-notice',
      status: 'waiting',
      waitingFor: ['f-tax'],
      missingFacts: [],
    });

    states['f-tax'] = 'completed';
    expect(statuses(plan(WORKLOAD, known, states, CATALOGUE))['business-notice']).toBe('ready');

    states['business-notice'] = 'completed';
    expect(plan(WORKLOAD, known, states, CATALOGUE).complete).toBe(true);
  });

  it('runs exactly five steps of the workload when each ready step completes at once', () => {
    const known: Record<string, unknown> = { ...WORKLOAD_FACTS };
    const states: States = {};
    const rounds: string[][] = [];
    for (let p = plan(WORKLOAD, known, states, CATALOGUE); !p.complete;) {
      const ready = p.steps.filter((s) => s.status === 'ready').map((s) => s.id);
      rounds.push(ready);
      for (const id of ready) {
        states[id] = 'completed';
        for (const fact of WORKLOAD.steps.find((s) => s.id === id)?.produces ?? []) {
          known[fact] = `${fact}-value`;
        }
      }
      p = plan(WORKLOAD, known, states, CATALOGUE);
      if (rounds.length > 10) throw new Error('does not terminate');
    }
    expect(rounds).toEqual([
      ['register-business'],
      ['f-tax', 'vat', 'employer'],
      ['business-notice'],
    ]);
  });

  it('asks only what is unknown: conditions first, lookups by agency, never produced facts', () => {
    const known = { 'person.personalNumber': '199012119948', 'business.name': 'Tolvans Kod' };
    const p = plan(WORKLOAD, known, {}, CATALOGUE);
    expect(p.steps).toEqual([
      {
        id: 'register-business',
        status: 'blocked',
        waitingFor: [],
        missingFacts: ['business.legalForm', 'business.sniCode', 'person.name'],
      },
      {
        id: 'f-tax',
        status: 'waiting',
        waitingFor: ['register-business'],
        missingFacts: ['business.expectedTurnover'],
      },
      {
        id: 'vat',
        status: 'undecided',
        waitingFor: ['register-business'],
        missingFacts: ['business.expectedTurnover'],
      },
      {
        id: 'employer',
        status: 'undecided',
        waitingFor: ['register-business'],
        missingFacts: ['business.willEmploy'],
      },
      {
        id: 'food-premises',
        status: 'undecided',
        waitingFor: [],
        missingFacts: ['business.servesFood'],
      },
      {
        id: 'business-notice',
        status: 'waiting',
        waitingFor: ['employer', 'f-tax', 'register-business', 'vat'],
        missingFacts: ['person.address'],
      },
    ]);
    expect(p.missing).toEqual({
      citizen: [
        'business.expectedTurnover',
        'business.legalForm',
        'business.servesFood',
        'business.sniCode',
        'business.willEmploy',
      ],
      lookup: [
        { key: 'person.address', agency: 'skatteverket' },
        { key: 'person.name', agency: 'skatteverket' },
      ],
    });
  });

  it('does not ask for the needs of a step that will be skipped or is undecided', () => {
    const definition = workloadCopy();
    // Only the food step needs the address now.
    stepAt(definition, 5).needs = ['business.orgNumber'];
    const facts: Record<string, unknown> = { ...WORKLOAD_FACTS, 'business.servesFood': undefined };
    delete facts['person.address'];
    const undecided = plan(definition, facts, {}, CATALOGUE);
    expect(undecided.missing).toEqual({ citizen: ['business.servesFood'], lookup: [] });
    const skipped = plan(definition, { ...facts, 'business.servesFood': false }, {}, CATALOGUE);
    expect(skipped.missing).toEqual({ citizen: [], lookup: [] });
    const needed = plan(definition, { ...facts, 'business.servesFood': true }, {}, CATALOGUE);
    expect(needed.missing.lookup).toEqual([{ key: 'person.address', agency: 'skatteverket' }]);
    expect(needed.steps[4]).toMatchObject({ status: 'blocked', missingFacts: ['person.address'] });
  });

  it('blocks the dependents of a failed or cancelled step', () => {
    const known = { ...WORKLOAD_FACTS, 'business.orgNumber': '9001011234' };
    const failed = plan(
      WORKLOAD,
      known,
      {
        'register-business': 'completed',
        'f-tax': 'failed',
        vat: 'completed',
        employer: 'cancelled',
      },
      CATALOGUE,
    );
    expect(failed.steps[5]).toEqual({
      id: 'business-notice',
      status: 'blocked',
      waitingFor: ['employer', 'f-tax'],
      missingFacts: [],
    });
    expect(failed.complete).toBe(false);
  });

  it('keeps an engine-ready step ready and counts a finished case as complete', () => {
    const known = { ...WORKLOAD_FACTS };
    expect(
      plan(WORKLOAD, known, { 'register-business': 'ready' }, CATALOGUE).steps[0]?.status,
    ).toBe('ready');
    const states: States = {
      'register-business': 'completed',
      'f-tax': 'failed',
      vat: 'cancelled',
      employer: 'completed',
      'food-premises': 'skipped',
      'business-notice': 'cancelled',
    };
    expect(plan(WORKLOAD, known, states, CATALOGUE).complete).toBe(true);
  });

  it('waits for the producer of a fact a condition reads', () => {
    const definition = workloadCopy();
    definition.steps.push({
      id: 'vat-notice',
      agency: 'kommun',
      action: 'business-notice',
      kind: 'automatic',
      after: ['vat'],
      needs: [],
      produces: [],
      when: {
        and: [
          { '>': [{ var: 'business.expectedTurnover' }, 120000] },
          { '!!': { var: 'business.vatNumber' } },
        ],
      },
    });
    expect(validate(definition, CATALOGUE)).toEqual([]);
    const known = { ...WORKLOAD_FACTS, 'business.orgNumber': '9001011234' };
    const states: States = { 'register-business': 'completed' };
    expect(plan(definition, known, states, CATALOGUE).steps[6]).toEqual({
      id: 'vat-notice',
      status: 'waiting',
      waitingFor: ['vat'],
      missingFacts: [],
    });
    // Below the threshold the condition is false without the VAT number: skipped at once.
    const small = { ...known, 'business.expectedTurnover': 50000 };
    expect(plan(definition, small, states, CATALOGUE).steps[6]?.status).toBe('skipped');
  });

  it('is deterministic', () => {
    const known = { 'business.name': 'x', 'business.willEmploy': true };
    expect(plan(WORKLOAD, known, {}, CATALOGUE)).toEqual(plan(WORKLOAD, known, {}, CATALOGUE));
  });
});

describe('evaluateCondition', () => {
  const turnover = { '>': [{ var: 'business.expectedTurnover' }, 120000] };

  it('reads dotted fact keys as nested paths, into a fact’s value', () => {
    expect(evaluateCondition(turnover, { 'business.expectedTurnover': 500000 })).toBe(true);
    expect(evaluateCondition(turnover, { 'business.expectedTurnover': 1000 })).toBe(false);
    const postal = { '==': [{ var: 'person.address.postalCode' }, '11122'] };
    expect(evaluateCondition(postal, { 'person.address': { postalCode: '11122' } })).toBe(true);
    expect(evaluateCondition(postal, { 'person.address': {} })).toBe(false);
  });

  it('is unknown only when the result depends on an unknown fact', () => {
    expect(evaluateCondition(turnover, {})).toBe('unknown');
    expect(evaluateCondition(turnover, { 'business.expectedTurnover': undefined })).toBe('unknown');
    const both = { and: [{ var: 'a.x' }, { var: 'a.y' }] };
    expect(evaluateCondition(both, { 'a.y': false })).toBe(false);
    expect(evaluateCondition(both, { 'a.y': true })).toBe('unknown');
    expect(evaluateCondition({ or: [{ var: 'a.x' }, { var: 'a.y' }] }, { 'a.y': 1 })).toBe(true);
    expect(evaluateCondition({ '!': [{ var: 'a.x' }] }, {})).toBe('unknown');
    expect(evaluateCondition({ if: [{ var: 'a.x' }, true, { var: 'a.y' }] }, { 'a.x': 0 })).toBe(
      'unknown',
    );
    expect(
      evaluateCondition({ if: [{ var: 'a.x' }, true, { var: 'a.y' }] }, { 'a.x': 0, 'a.y': 'y' }),
    ).toBe(true);
    expect(evaluateCondition({ var: 'a.x' }, { 'a.x': null })).toBe(false);
    expect(evaluateCondition({ var: 'a.x' }, { 'a.x': [] })).toBe(false);
  });

  it('refuses operators validate refuses instead of running them', () => {
    expect(() => evaluateCondition({ method: [{ var: 'a.x' }, 'toString'] }, { 'a.x': 1 })).toThrow(
      /disallowed operator "method"/,
    );
    expect(() => evaluateCondition({ var: { cat: ['a', '.x'] } }, {})).toThrow(/literal string/);
  });

  it('keeps fact keys such as __proto__ as plain data', () => {
    const known = JSON.parse('{"__proto__.polluted": true, "a.constructor": 1}') as Record<
      string,
      unknown
    >;
    expect(evaluateCondition({ var: '__proto__.polluted' }, known)).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(evaluateCondition({ '==': [{ var: 'a.constructor' }, 1] }, known)).toBe(true);
  });
});
