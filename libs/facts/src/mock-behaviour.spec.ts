import { describe, expect, it } from '@jest/globals';
import type { AgencyAction } from '#workflow';
import { checkCatalogue, parseAgencies, parseFactCatalogue } from './catalogue.js';
import { MOCK_LIMITS, mockProblems, readMockBehaviour } from './mock-behaviour.js';
import { Problems } from './reading.js';
import type { CatalogueProblem } from './catalogue.js';

const FULL = `
- code: jordbruksverket
  name: { sv: Jordbruksverket, en: Swedish Board of Agriculture }
  adapter: mock
  actions:
    - name: register-farm
      title: { sv: Registrera lantbruk, en: Register a farm }
      produces: [farm.id, farm.registeredOn, farm.reference, farm.kind, farm.owner]
      mock:
        requires: [person.personalNumber, farm.name]
        produce:
          farm.id: { generate: organisation-number }
          farm.registeredOn: { generate: today }
          farm.reference: { generate: reference }
          farm.kind: { value: { type: dairy, cows: [1, 2.5], organic: true, note: null } }
          farm.owner: { from: person.name }
        latencyMs: 250
        decidedAfter: PT30S
        refusal:
          rate: 0.25
          code: farm-refused
          reason: The farm does not meet the requirements
  lookups: []
`;

/** One agency with one action `act` producing `produces`, with `mock` as given (as JSON). */
function withMock(mock: unknown, produces: string[] = ['farm.id']): string {
  return JSON.stringify([
    {
      code: 'jordbruksverket',
      name: { sv: 'Jordbruksverket', en: 'Swedish Board of Agriculture' },
      adapter: 'mock',
      actions: [{ name: 'register-farm', title: { sv: 'a', en: 'b' }, produces, mock }],
      lookups: [],
    },
  ]);
}

const VALID = { produce: { 'farm.id': { generate: 'organisation-number' } } };

/** The problems of the agency with `mock`; the agency is left out whenever there is one. */
function problemsOf(mock: unknown, produces?: string[]): CatalogueProblem[] {
  const parsed = parseAgencies(withMock(mock, produces));
  if (parsed.problems.length > 0) expect(parsed.agencies).toEqual([]);
  return parsed.problems;
}

const AT = '/0/actions/0/mock';

describe('reading an action’s mock through parseAgencies', () => {
  it('reads a full mock block as written', () => {
    const parsed = parseAgencies(FULL);
    expect(parsed.problems).toEqual([]);
    expect(parsed.agencies[0]?.actions[0]).toEqual({
      name: 'register-farm',
      title: { sv: 'Registrera lantbruk', en: 'Register a farm' },
      produces: ['farm.id', 'farm.registeredOn', 'farm.reference', 'farm.kind', 'farm.owner'],
      mock: {
        requires: ['person.personalNumber', 'farm.name'],
        produce: {
          'farm.id': { generate: 'organisation-number' },
          'farm.registeredOn': { generate: 'today' },
          'farm.reference': { generate: 'reference' },
          'farm.kind': { value: { type: 'dairy', cows: [1, 2.5], organic: true, note: null } },
          'farm.owner': { from: 'person.name' },
        },
        latencyMs: 250,
        decidedAfter: 'PT30S',
        refusal: {
          rate: 0.25,
          code: 'farm-refused',
          reason: 'The farm does not meet the requirements',
        },
      },
    });
  });

  it('leaves an action without a mock without one, and reads an empty mock of an action producing nothing', () => {
    const without = parseAgencies(FULL.replace(/ {6}mock:[\s\S]*(?= {2}lookups)/, ''));
    expect(without.problems).toEqual([]);
    expect(without.agencies[0]?.actions[0]).not.toHaveProperty('mock');

    const empty = parseAgencies(withMock({}, []));
    expect(empty.problems).toEqual([]);
    expect(empty.agencies[0]?.actions[0]?.mock).toEqual({});
  });

  it.each([
    ['latencyMs 0', { ...VALID, latencyMs: 0 }],
    [`latencyMs ${MOCK_LIMITS.latencyMsMax}`, { ...VALID, latencyMs: MOCK_LIMITS.latencyMsMax }],
    ['decidedAfter PT1S', { ...VALID, decidedAfter: 'PT1S' }],
    ['decidedAfter P30D', { ...VALID, decidedAfter: 'P30D' }],
    ['decidedAfter P4W', { ...VALID, decidedAfter: 'P4W' }],
    ['decidedAfter PT1.5S', { ...VALID, decidedAfter: 'PT1.5S' }],
    ['refusal rate 0', { ...VALID, refusal: { rate: 0, code: 'no', reason: 'r' } }],
    ['refusal rate 1', { ...VALID, refusal: { rate: 1, code: 'no', reason: 'r' } }],
    [
      'a reason of the longest length',
      { ...VALID, refusal: { rate: 0.5, code: 'no', reason: 'r'.repeat(2_000) } },
    ],
    ['a value of false', { produce: { 'farm.id': { value: false } } }],
    ['a value of null', { produce: { 'farm.id': { value: null } } }],
  ])('accepts %s', (_, mock) => {
    expect(problemsOf(mock)).toEqual([]);
  });

  it.each([
    ['latencyMs -1', { latencyMs: -1 }, '/latencyMs'],
    ['latencyMs above the limit', { latencyMs: MOCK_LIMITS.latencyMsMax + 1 }, '/latencyMs'],
    ['a fractional latencyMs', { latencyMs: 1.5 }, '/latencyMs'],
    ['latencyMs as a string', { latencyMs: '100' }, '/latencyMs'],
    ['decidedAfter PT0S', { decidedAfter: 'PT0S' }, '/decidedAfter'],
    ['decidedAfter under a second', { decidedAfter: 'PT0.5S' }, '/decidedAfter'],
    ['decidedAfter P31D', { decidedAfter: 'P31D' }, '/decidedAfter'],
    ['decidedAfter P5W', { decidedAfter: 'P5W' }, '/decidedAfter'],
    ['decidedAfter "soon"', { decidedAfter: 'soon' }, '/decidedAfter'],
    ['decidedAfter as a number', { decidedAfter: 30 }, '/decidedAfter'],
    ['refusal rate 1.5', { refusal: { rate: 1.5, code: 'no', reason: 'r' } }, '/refusal/rate'],
    ['refusal rate -0.1', { refusal: { rate: -0.1, code: 'no', reason: 'r' } }, '/refusal/rate'],
    [
      'refusal rate as a string',
      { refusal: { rate: '1', code: 'no', reason: 'r' } },
      '/refusal/rate',
    ],
    ['a missing refusal rate', { refusal: { code: 'no', reason: 'r' } }, '/refusal/rate'],
    [
      'a code not kebab-case',
      { refusal: { rate: 1, code: 'Not OK', reason: 'r' } },
      '/refusal/code',
    ],
    ['a one-letter code', { refusal: { rate: 1, code: 'x', reason: 'r' } }, '/refusal/code'],
    ['a missing code', { refusal: { rate: 1, reason: 'r' } }, '/refusal/code'],
    ['an empty reason', { refusal: { rate: 1, code: 'no', reason: '' } }, '/refusal/reason'],
    ['a blank reason', { refusal: { rate: 1, code: 'no', reason: '   ' } }, '/refusal/reason'],
    [
      'a reason too long',
      { refusal: { rate: 1, code: 'no', reason: 'r'.repeat(2_001) } },
      '/refusal/reason',
    ],
    ['a refusal not an object', { refusal: 'always' }, '/refusal'],
    [
      'an unknown property of refusal',
      { refusal: { rate: 1, code: 'no', reason: 'r', why: 1 } },
      '/refusal/why',
    ],
    ['requires not a list', { requires: 'person.name' }, '/requires'],
    ['requires with a bad fact key', { requires: ['Person.Name'] }, '/requires/0'],
    ['requires listing a fact twice', { requires: ['person.name', 'person.name'] }, '/requires/1'],
    ['produce as a list', { produce: [{ generate: 'reference' }] }, '/produce'],
    ['an unknown property', { colour: 'blue' }, '/colour'],
  ])('reports %s at its path', (_, mock, path) => {
    // Each problem alone: the rest of the mock is valid.
    const problems = problemsOf({ ...VALID, ...mock });
    expect(problems.map((p) => p.path)).toEqual([`${AT}${path}`]);
  });

  it.each([
    ['two keys', { value: 1, from: 'person.name' }, ''],
    ['no key', {}, ''],
    ['an unknown key', { compute: 'x' }, ''],
    ['not an object', 'reference', ''],
    ['an unknown generator', { generate: 'uuid' }, '/generate'],
    ['from a bad fact key', { from: 'Person' }, '/from'],
    ['from a number', { from: 42 }, '/from'],
  ])('reports a produce rule with %s at the rule', (_, rule, path) => {
    const problems = problemsOf({ produce: { 'farm.id': rule } });
    expect(problems.map((p) => p.path)).toEqual([`${AT}/produce/farm.id${path}`]);
  });

  it('names the allowed generators', () => {
    expect(problemsOf({ produce: { 'farm.id': { generate: 'uuid' } } })).toEqual([
      {
        path: `${AT}/produce/farm.id/generate`,
        message: 'must be one of reference, organisation-number, today',
      },
    ]);
  });

  it('reads a template rule, and reports one with an unknown placeholder or count', () => {
    const parsed = parseAgencies(
      withMock({ produce: { 'farm.id': { template: 'JV-{year}-{digits:6}' } } }),
    );
    expect(parsed.problems).toEqual([]);
    expect(parsed.agencies[0]?.actions[0]?.mock?.produce).toEqual({
      'farm.id': { template: 'JV-{year}-{digits:6}' },
    });
    for (const [template, message] of [
      [
        'JV-{serial}',
        'may hold only the placeholders {year}, {date}, {reference}, {digits:N} and {hex:N}',
      ],
      ['JV-{digits:0}', 'N of {digits:N} and {hex:N} must be 1 to 20'],
      ['', 'must be a text of 1 to 200 characters'],
    ] as const) {
      expect(problemsOf({ produce: { 'farm.id': { template } } })).toEqual([
        { path: `${AT}/produce/farm.id/template`, message },
      ]);
    }
  });

  it('reports a produce rule for a fact the action does not produce, at that rule', () => {
    expect(
      problemsOf({
        produce: { 'farm.id': { generate: 'reference' }, 'farm.other': { value: 1 } },
      }),
    ).toEqual([
      {
        path: `${AT}/produce/farm.other`,
        message: 'farm.other is not among the facts register-farm produces',
      },
    ]);
  });

  it('reports each fact of produces without a rule, at produce', () => {
    expect(
      problemsOf({ produce: { 'farm.id': { generate: 'reference' } } }, [
        'farm.id',
        'farm.name',
        'farm.size',
      ]),
    ).toEqual([
      {
        path: `${AT}/produce`,
        message:
          'says nothing of farm.name, which register-farm produces (give a value, from, generate or template)',
      },
      {
        path: `${AT}/produce`,
        message:
          'says nothing of farm.size, which register-farm produces (give a value, from, generate or template)',
      },
    ]);
    // No produce at all: every fact of produces is reported.
    expect(problemsOf({ latencyMs: 10 }, ['farm.id']).map((p) => p.path)).toEqual([
      `${AT}/produce`,
    ]);
  });

  it('reports a produce key that is not a fact key', () => {
    const problems = problemsOf({ produce: { 'farm.id': { value: 1 }, Farm: { value: 2 } } });
    expect(problems).toContainEqual({
      path: `${AT}/produce/Farm`,
      message: 'must be keyed by a fact key in dotted lower camel case (person.address)',
    });
    expect(problems.every((p) => p.path.startsWith(`${AT}/produce`))).toBe(true);
  });

  it('reports a mock that is not an object', () => {
    expect(problemsOf('fast')).toEqual([{ path: AT, message: 'must be an object' }]);
  });

  it('reports every problem of one mock, and of another action, at once', () => {
    const text = JSON.stringify([
      {
        code: 'jordbruksverket',
        name: { sv: 'J', en: 'J' },
        adapter: 'mock',
        actions: [
          { name: 'a-one', title: { sv: 'a', en: 'a' }, produces: [], mock: { latencyMs: -5 } },
          {
            name: 'a-two',
            title: { sv: 'a', en: 'a' },
            produces: [],
            mock: { decidedAfter: 'P31D', refusal: { rate: 2, code: 'ok', reason: '' } },
          },
        ],
        lookups: [],
      },
    ]);
    const parsed = parseAgencies(text);
    expect(parsed.agencies).toEqual([]);
    expect(parsed.problems.map((p) => p.path).sort()).toEqual([
      '/0/actions/0/mock/latencyMs',
      '/0/actions/1/mock/decidedAfter',
      '/0/actions/1/mock/refusal/rate',
      '/0/actions/1/mock/refusal/reason',
    ]);
  });
});

describe('readMockBehaviour and mockProblems alone', () => {
  it('reports under the prefix it is given and returns nothing on a problem', () => {
    const sink: CatalogueProblem[] = [];
    expect(
      readMockBehaviour({ latencyMs: 10, decidedAfter: 'later' }, new Problems('/x', sink)),
    ).toBeUndefined();
    expect(sink).toEqual([
      {
        path: '/x/decidedAfter',
        message: 'must be an ISO 8601 duration from PT1S to P30D, such as PT30S',
      },
    ]);
  });

  it('returns only the properties given', () => {
    const sink: CatalogueProblem[] = [];
    expect(readMockBehaviour({ latencyMs: 0 }, new Problems('', sink))).toEqual({ latencyMs: 0 });
    expect(sink).toEqual([]);
  });

  it('finds nothing wrong with an action without a mock', () => {
    const action: AgencyAction = { name: 'a-b', title: { sv: 'a', en: 'b' }, produces: ['x.y'] };
    expect(mockProblems(action)).toEqual([]);
  });
});

describe('checkCatalogue and the facts a mock reads', () => {
  const facts = parseFactCatalogue(`
- key: person.name
  label: { sv: a, en: b }
  sensitivity: personal
  source: citizen
  schema: { type: string }
- key: farm.owner
  label: { sv: a, en: b }
  sensitivity: personal
  source: produced
  schema: { type: string }
- key: farm.id
  label: { sv: a, en: b }
  sensitivity: public
  source: produced
  schema: { type: string }
`).facts;

  function agencies(mock: unknown) {
    const parsed = parseAgencies(withMock(mock, ['farm.owner', 'farm.id']));
    expect(parsed.problems).toEqual([]);
    return parsed.agencies;
  }

  it('accepts a mock that reads only known facts', () => {
    expect(
      checkCatalogue(
        facts,
        agencies({
          requires: ['person.name'],
          produce: { 'farm.owner': { from: 'person.name' }, 'farm.id': { generate: 'reference' } },
        }),
      ),
    ).toEqual([]);
  });

  it('reports an unknown fact a mock requires or produces from, at where it reads it', () => {
    expect(
      checkCatalogue(
        facts,
        agencies({
          requires: ['person.name', 'person.shoeSize'],
          produce: {
            'farm.owner': { from: 'person.nickname' },
            'farm.id': { value: 'F-1' },
          },
        }),
      ),
    ).toEqual([
      {
        path: '/agencies/0/actions/0/mock/requires/1',
        message: 'unknown fact person.shoeSize',
      },
      {
        path: '/agencies/0/actions/0/mock/produce/farm.owner/from',
        message: 'unknown fact person.nickname',
      },
    ]);
  });
});
