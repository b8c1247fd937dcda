import { describe, expect, it } from '@jest/globals';
import { CATALOGUE, WORKLOAD, stepAt, workloadCopy } from '../test/fixtures.js';
import {
  DIAGNOSTIC_CODES,
  validate,
  type Diagnostic,
  type LifeEventDefinition,
  type StepDefinition,
} from './index.js';

/** `code path` of each diagnostic, for compact assertions. */
function found(diagnostics: readonly Diagnostic[]): string[] {
  return diagnostics.map((d) => `${d.code} ${d.path}`);
}

function check(definition: unknown): string[] {
  return found(validate(definition, CATALOGUE));
}

/** As `check`, errors only: for changes that also leave an input unused. */
function errors(definition: unknown): string[] {
  return found(validate(definition, CATALOGUE).filter((d) => d.severity === 'error'));
}

/** The workload with changes; `steps` by index as A=0 … F=5. */
function mutated(change: (d: LifeEventDefinition) => void): LifeEventDefinition {
  const definition = workloadCopy();
  change(definition);
  return definition;
}

const step = stepAt;

/** A step of the kommun business-notice action (produces nothing) with the given needs. */
function notice(id: string, needs: string[], extra: Partial<StepDefinition> = {}): StepDefinition {
  return {
    id,
    agency: 'kommun',
    action: 'business-notice',
    kind: 'automatic',
    needs,
    produces: [],
    ...extra,
  };
}

describe('validate', () => {
  it('accepts the benchmark workload without any diagnostic', () => {
    expect(validate(WORKLOAD, CATALOGUE)).toEqual([]);
  });

  it('describes every code it can report', () => {
    for (const description of Object.values(DIAGNOSTIC_CODES)) {
      expect(description.length).toBeGreaterThan(10);
    }
  });

  describe('invalid-shape', () => {
    it('reports a value that is not an object at the root', () => {
      expect(validate([], CATALOGUE)).toEqual([
        { severity: 'error', code: 'invalid-shape', path: '', message: 'must be an object' },
      ]);
      expect(check('start-business')).toEqual(['invalid-shape ']);
      expect(check(null)).toEqual(['invalid-shape ']);
    });

    it('points at a missing property, an unknown one and a mistyped one', () => {
      const definition = mutated((d) => {
        Object.assign(d, { colour: 'blue', version: '1' });
        delete (d as Partial<LifeEventDefinition>).key;
        Object.assign(step(d, 2), { kind: 'manual', title: { sv: ' ', en: 'VAT' } });
      });
      const diagnostics = validate(definition, CATALOGUE);
      expect(found(diagnostics)).toEqual([
        'invalid-shape /colour',
        'invalid-shape /key',
        'invalid-shape /steps/2/kind',
        'invalid-shape /steps/2/title/sv',
        'invalid-shape /version',
      ]);
      expect(diagnostics.map((d) => d.message)).toEqual([
        'is not a known property',
        'is required',
        'must be one of "automatic", "decision", "citizen-task"',
        'must not be blank',
        'must be an integer',
      ]);
    });

    it('checks patterns and reports every repeated entry of a list', () => {
      const definition = mutated((d) => {
        d.key = 'Start Business';
        step(d, 0).id = 'A';
        step(d, 0).needs.push('person.name', 'Person-Name', 'person.name');
        step(d, 1).action = 'register--f-tax';
        step(d, 1).agency = 'x';
      });
      expect(check(definition)).toEqual([
        'invalid-shape /key',
        'invalid-shape /steps/0/id',
        'invalid-shape /steps/0/needs/5',
        'invalid-shape /steps/0/needs/6',
        'invalid-shape /steps/0/needs/7',
        'invalid-shape /steps/1/action',
        'invalid-shape /steps/1/agency',
      ]);
    });

    it('checks retry types but leaves ranges to retry-out-of-range', () => {
      const definition = mutated((d) => {
        step(d, 5).retry = { attempts: 2.5, backoff: { type: 'linear' } } as never;
      });
      expect(check(definition)).toEqual([
        'invalid-shape /steps/5/retry/attempts',
        'invalid-shape /steps/5/retry/backoff/initialDelayMs',
        'invalid-shape /steps/5/retry/backoff/jitter',
        'invalid-shape /steps/5/retry/backoff/maxDelayMs',
        'invalid-shape /steps/5/retry/backoff/multiplier',
        'invalid-shape /steps/5/retry/backoff/type',
      ]);
    });
  });

  it('duplicate-step-id: at the second occurrence', () => {
    const definition = mutated((d) => {
      step(d, 3).id = 'vat';
      step(d, 5).after = ['f-tax', 'vat'];
    });
    expect(check(definition)).toEqual(['duplicate-step-id /steps/3/id']);
  });

  it('unknown-fact: at the exact element of inputs, needs, produces and a when var', () => {
    const definition = mutated((d) => {
      d.inputs.push('person.shoeSize');
      step(d, 1).needs = ['business.orgNumber', 'business.colour'];
      step(d, 4).produces = ['business.foodRegistrationId', 'business.menu'];
      step(d, 3).when = { var: 'staff.count' };
    });
    expect(check(definition)).toEqual([
      // business.willEmploy was read by the condition the test replaced.
      'input-unused /inputs/7',
      'unknown-fact /inputs/9',
      'unknown-fact /steps/1/needs/1',
      'unknown-fact /steps/3/when/var',
      'unknown-fact /steps/4/produces/1',
    ]);
  });

  it('unknown-agency and unknown-action', () => {
    const definition = mutated((d) => {
      step(d, 0).agency = 'lantmateriet';
      step(d, 1).action = 'register-moms';
    });
    const diagnostics = validate(definition, CATALOGUE);
    expect(found(diagnostics)).toEqual([
      'unknown-agency /steps/0/agency',
      'unknown-action /steps/1/action',
    ]);
    expect(diagnostics[1]?.message).toContain('register-vat');
  });

  it('unknown-step: an after entry naming no step', () => {
    const definition = mutated((d) => {
      step(d, 5).after = ['f-tax', 'moms', 'employer'];
    });
    expect(check(definition)).toEqual(['unknown-step /steps/5/after/1']);
  });

  it('input-not-askable: an input only agencies produce', () => {
    const definition = mutated((d) => {
      d.inputs.push('business.orgNumber');
    });
    expect(check(definition)).toEqual(['input-not-askable /inputs/9']);
  });

  it('need-unavailable: neither an input nor produced', () => {
    const definition = mutated((d) => {
      d.inputs = d.inputs.filter((key) => key !== 'person.address');
    });
    expect(check(definition)).toEqual([
      'need-unavailable /steps/4/needs/1',
      'need-unavailable /steps/5/needs/1',
    ]);
  });

  describe('need-conditional', () => {
    it('a consumer without the condition of its producer', () => {
      const definition = mutated((d) => {
        d.steps.push(notice('vat-notice', ['business.vatNumber']));
      });
      const diagnostics = validate(definition, CATALOGUE);
      expect(found(diagnostics)).toEqual(['need-conditional /steps/6/needs/0']);
      expect(diagnostics[0]?.message).toContain('business.expectedTurnover > 120000');
    });

    it('accepts a consumer that has its producer’s condition among its conjuncts', () => {
      const definition = mutated((d) => {
        d.steps.push(
          notice('vat-notice', ['business.vatNumber'], {
            when: {
              and: [
                { var: 'business.willEmploy' },
                { '>': [{ var: 'business.expectedTurnover' }, 120000] },
              ],
            },
          }),
        );
      });
      expect(check(definition)).toEqual([]);
    });

    it('applies transitively: each consumer is checked against its own producers', () => {
      const definition = mutated((d) => {
        // employer is conditional on willEmploy; payroll keeps it, the notice after it does not.
        step(d, 3).produces = ['business.employerId'];
        d.steps.push(
          notice('payroll', ['business.employerId'], { when: { var: 'business.willEmploy' } }),
          notice('payroll-notice', ['business.employerId']),
        );
      });
      expect(check(definition)).toEqual(['need-conditional /steps/7/needs/0']);
    });

    it('accepts producers whose conditions negate each other', () => {
      const definition = mutated((d) => {
        step(d, 3).when = { '!': { var: 'business.servesFood' } };
        step(d, 3).needs = ['business.orgNumber'];
        d.steps.push({
          ...step(d, 3),
          id: 'employer-food',
          when: { var: 'business.servesFood' },
        });
        d.steps.push(notice('employer-notice', ['business.employerId']));
      });
      expect(errors(definition)).toEqual([]);
    });
  });

  describe('produced-twice', () => {
    it('two producers that can both run', () => {
      const definition = mutated((d) => {
        d.steps.push({ ...step(d, 0), id: 'register-again' });
      });
      const diagnostics = validate(definition, CATALOGUE);
      expect(found(diagnostics)).toEqual(['produced-twice /steps/6/produces/0']);
      expect(diagnostics[0]?.message).toContain('register-business');
    });

    it('accepts producers with disjoint conditions: a negation, or one var equal to different literals', () => {
      const definition = mutated((d) => {
        step(d, 0).when = { '==': [{ var: 'business.legalForm' }, 'sole-trader'] };
        d.steps.push({
          ...step(d, 0),
          id: 'register-company',
          when: { '===': ['limited-company', { var: 'business.legalForm' }] },
        });
      });
      // The consumers of the organisation number now lack either producer's condition.
      expect(check(definition).filter((line) => line.startsWith('produced-twice'))).toEqual([]);
    });

    it('does not take loose equality to "1" and to 1 as disjoint', () => {
      const definition = mutated((d) => {
        step(d, 0).when = { '==': [{ var: 'business.sniCode' }, '62010'] };
        d.steps.push({
          ...step(d, 0),
          id: 'register-again',
          when: { '==': [{ var: 'business.sniCode' }, 62010] },
        });
      });
      expect(check(definition)).toContain('produced-twice /steps/6/produces/0');
    });
  });

  it('cycle: named in order and reported once at its first step', () => {
    const definition = mutated((d) => {
      step(d, 0).after = ['business-notice'];
    });
    const diagnostics = validate(definition, CATALOGUE);
    expect(found(diagnostics)).toEqual(['cycle /steps/0']);
    expect(diagnostics[0]?.message).toContain(
      'register-business → business-notice → register-business',
    );
  });

  it('cycle: a step after itself, and two separate cycles', () => {
    const definition = mutated((d) => {
      step(d, 4).after = ['food-premises'];
      step(d, 1).after = ['vat'];
      step(d, 2).after = ['f-tax'];
    });
    const diagnostics = validate(definition, CATALOGUE);
    expect(found(diagnostics)).toEqual(['cycle /steps/1', 'cycle /steps/4']);
    expect(diagnostics[0]?.message).toContain('f-tax → vat → f-tax');
    expect(diagnostics[1]?.message).toContain('food-premises → food-premises');
  });

  describe('unreachable-step', () => {
    it.each([false, 0, '', null, { and: [{ var: 'business.servesFood' }, false] }])(
      'a when that is always false: %j',
      (when) => {
        const definition = mutated((d) => {
          step(d, 4).when = when;
        });
        expect(errors(definition)).toEqual(['unreachable-step /steps/4/when']);
      },
    );

    it('a when with a conjunct and its negation', () => {
      const definition = mutated((d) => {
        step(d, 4).when = {
          and: [{ var: 'business.servesFood' }, { '!': [{ var: 'business.servesFood' }] }],
        };
      });
      expect(check(definition)).toEqual(['unreachable-step /steps/4/when']);
    });

    it('a step needing a fact whose every producer never runs', () => {
      const definition = mutated((d) => {
        step(d, 2).when = { '==': [1, 2] };
        d.steps.push(notice('vat-notice', ['business.orgNumber', 'business.vatNumber']));
      });
      expect(check(definition)).toEqual([
        'unreachable-step /steps/2/when',
        'unreachable-step /steps/6/needs/1',
      ]);
    });
  });

  describe('when-invalid', () => {
    it('an unknown operator, a computed var and an object with two keys', () => {
      const definition = mutated((d) => {
        step(d, 2).when = {
          and: [
            { method: [{ var: 'business.name' }, 'toUpperCase'] },
            { '>': [{ var: { cat: ['business.', 'expectedTurnover'] } }, 1] },
            { '==': [1, 1], '!=': [1, 2] },
            { var: '' },
          ],
        };
      });
      expect(check(definition)).toEqual([
        'when-invalid /steps/2/when/and/0/method',
        'when-invalid /steps/2/when/and/1/>/0/var',
        'when-invalid /steps/2/when/and/2',
        'when-invalid /steps/2/when/and/3/var',
      ]);
    });

    it('escapes operators in the pointer', () => {
      const definition = mutated((d) => {
        step(d, 2).when = {
          '>': [{ '/': [{ var: ['business.expectedTurnover'] }, 12] }, { log: 1 }],
        };
      });
      expect(check(definition)).toEqual(['when-invalid /steps/2/when/>/1/log']);
    });
  });

  describe('when-unavailable-fact', () => {
    it('a fact produced by a step that does not run before', () => {
      const definition = mutated((d) => {
        step(d, 4).when = { var: 'business.vatNumber' };
      });
      expect(errors(definition)).toEqual(['when-unavailable-fact /steps/4/when/var']);
    });

    it('a fact neither an input nor produced', () => {
      const definition = mutated((d) => {
        d.inputs = d.inputs.filter((key) => key !== 'business.servesFood');
      });
      expect(check(definition)).toEqual(['when-unavailable-fact /steps/4/when/var']);
    });

    it('a fact produced upstream, but under a condition this one lacks', () => {
      const definition = mutated((d) => {
        d.steps.push(
          notice('vat-notice', ['business.orgNumber'], {
            after: ['vat'],
            when: { '!!': { var: 'business.vatNumber' } },
          }),
        );
      });
      expect(check(definition)).toEqual(['when-unavailable-fact /steps/6/when/!!/var']);
    });

    it('reads into a fact: person.address.postalCode reads person.address', () => {
      const definition = mutated((d) => {
        step(d, 4).when = {
          and: [
            { var: 'business.servesFood' },
            { in: [{ var: 'person.address.postalCode' }, ['11122', '11123']] },
          ],
        };
      });
      expect(check(definition)).toEqual([]);
    });
  });

  it('produces-not-supplied: a fact the action does not produce', () => {
    const definition = mutated((d) => {
      step(d, 5).produces = ['business.bankgiro'];
    });
    expect(check(definition)).toEqual(['produces-not-supplied /steps/5/produces/0']);
  });

  it('retry-out-of-range: at the exact field', () => {
    const definition = mutated((d) => {
      step(d, 5).retry = {
        attempts: 0,
        backoff: {
          type: 'exponential',
          initialDelayMs: 50,
          maxDelayMs: 40,
          multiplier: 11,
          jitter: 1.5,
        },
      };
      step(d, 4).retry = {
        attempts: 21,
        backoff: {
          type: 'exponential',
          initialDelayMs: 3_600_001,
          maxDelayMs: 86_400_001,
          multiplier: 0.5,
          jitter: -0.1,
        },
      };
    });
    expect(check(definition)).toEqual([
      'retry-out-of-range /steps/4/retry/attempts',
      'retry-out-of-range /steps/4/retry/backoff/initialDelayMs',
      'retry-out-of-range /steps/4/retry/backoff/jitter',
      'retry-out-of-range /steps/4/retry/backoff/maxDelayMs',
      'retry-out-of-range /steps/4/retry/backoff/multiplier',
      'retry-out-of-range /steps/5/retry/attempts',
      'retry-out-of-range /steps/5/retry/backoff/initialDelayMs',
      'retry-out-of-range /steps/5/retry/backoff/jitter',
      'retry-out-of-range /steps/5/retry/backoff/maxDelayMs',
      'retry-out-of-range /steps/5/retry/backoff/multiplier',
    ]);
  });

  it.each(['thirty days', 'P', 'PT', 'P1DT', '-P1D', ' P1D', 'P1.5Y2M', 'p30d', 'P1W2D'])(
    'deadline-invalid: %j',
    (deadline) => {
      const definition = mutated((d) => {
        step(d, 1).deadline = deadline;
      });
      expect(check(definition)).toEqual(['deadline-invalid /steps/1/deadline']);
    },
  );

  it.each(['PT1M', 'P2Y', 'P24M', 'P730D', 'PT0.5H', 'P1Y2M3DT4H5M6S', 'P4W', 'PT1,5H'])(
    'accepts the deadline %j',
    (deadline) => {
      const definition = mutated((d) => {
        step(d, 1).deadline = deadline;
      });
      expect(check(definition)).toEqual([]);
    },
  );

  it.each(['PT59S', 'PT0M', 'P2Y1D', 'P25M', 'P731D', 'P105W'])(
    'deadline-out-of-range: %j',
    (deadline) => {
      const definition = mutated((d) => {
        step(d, 1).deadline = deadline;
      });
      expect(check(definition)).toEqual(['deadline-out-of-range /steps/1/deadline']);
    },
  );

  it('input-unused: a warning, the only one', () => {
    const definition = mutated((d) => {
      d.inputs.push('person.email');
    });
    expect(validate(definition, CATALOGUE)).toEqual([
      {
        severity: 'warning',
        code: 'input-unused',
        path: '/inputs/9',
        message: '"person.email" is neither needed by a step nor read by a condition',
      },
    ]);
  });

  it('reports every problem at once, sorted by path (numerically) then code', () => {
    const definition = mutated((d) => {
      Object.assign(d, { owner: 'me' });
      d.inputs.push('person.email', 'business.orgNumber');
      step(d, 0).agency = 'lantmateriet';
      step(d, 1).deadline = 'P3Y';
      step(d, 2).when = { method: [] };
      step(d, 3).id = 'vat';
      step(d, 4).when = false;
      step(d, 5).after = ['nobody'];
      step(d, 5).produces = ['business.bankgiro'];
      for (let i = 0; i < 6; i++) d.steps.push(notice(`extra-${i}`, ['person.address']));
      d.steps.push(notice('extra-last', ['business.colour']));
    });
    expect(check(definition)).toEqual([
      // business.servesFood: read only by the condition replaced by false.
      'input-unused /inputs/8',
      'input-unused /inputs/9',
      'input-not-askable /inputs/10',
      'invalid-shape /owner',
      'unknown-agency /steps/0/agency',
      'deadline-out-of-range /steps/1/deadline',
      'when-invalid /steps/2/when/method',
      'duplicate-step-id /steps/3/id',
      'unreachable-step /steps/4/when',
      'unknown-step /steps/5/after/0',
      'produces-not-supplied /steps/5/produces/0',
      'unknown-fact /steps/12/needs/0',
    ]);
  });

  it('never throws and still checks what it can in a badly broken definition', () => {
    const broken = {
      key: 7,
      steps: [
        null,
        'step',
        { id: 'a', needs: 'x', produces: [1, 'business.orgNumber'] },
        { id: 'b', after: ['a', 'c'], needs: ['business.orgNumber'] },
      ],
      inputs: { 'person.name': true },
    };
    const lines = check(broken);
    expect(lines).toContain('unknown-step /steps/3/after/1');
    expect(lines).toContain('invalid-shape /steps/0');
    expect(lines).toContain('invalid-shape /key');
  });
});
