import { describe, expect, it } from '@jest/globals';
import { AGENCIES, FACTS, WORKLOAD, catalogueOf, stepAt, workloadCopy } from '../test/fixtures.js';
import {
  DIAGNOSTIC_CODES,
  servingDiagnostics,
  validate,
  type Agency,
  type Diagnostic,
  type LifeEventDefinition,
  type MockBehaviour,
  type Serving,
} from './index.js';

/**
 * The workload's steps by index: 0 register-business (bolagsverket), 1 f-tax, 2 vat, 3 employer
 * (skatteverket), 4 food-premises, 5 business-notice (kommun).
 */

/** Every action of the fixture catalogue, as if leo's mocks had each built in. */
const ALL_BUILT_IN: Serving['builtInMocks'] = new Map(
  AGENCIES.map((agency) => [agency.code, new Set(agency.actions.map((a) => a.name))]),
);

function serving(overrides: Partial<Serving> = {}): Serving {
  return { builtInMocks: ALL_BUILT_IN, agenciesWithCredential: new Set(), ...overrides };
}

/** The fixture agencies with changes: an agency's adapter, or the mock of one of its actions. */
function agenciesWith(
  changes: Record<string, { adapter?: Agency['adapter']; mocks?: Record<string, MockBehaviour> }>,
): Agency[] {
  return AGENCIES.map((agency) => {
    const change = changes[agency.code];
    if (!change) return agency;
    return {
      ...agency,
      ...(change.adapter ? { adapter: change.adapter } : {}),
      actions: agency.actions.map((action) => {
        const mock = change.mocks?.[action.name];
        return mock ? { ...action, mock } : action;
      }),
    };
  });
}

function diagnose(
  agencies: Agency[],
  how: Partial<Serving> = {},
  definition: LifeEventDefinition = WORKLOAD,
): Diagnostic[] {
  return servingDiagnostics(definition, catalogueOf(FACTS, agencies), serving(how));
}

/** Built in everywhere but `missing` (agency → actions). */
function builtInWithout(missing: Record<string, string[]>): Serving['builtInMocks'] {
  return new Map(
    AGENCIES.map((agency) => [
      agency.code,
      new Set(
        agency.actions
          .map((a) => a.name)
          .filter((name) => !(missing[agency.code] ?? []).includes(name)),
      ),
    ]),
  );
}

/** Nothing of kommun built in. */
const NO_KOMMUN = builtInWithout({ kommun: ['register-food-premises', 'business-notice'] });

const found = (diagnostics: readonly Diagnostic[]) =>
  diagnostics.map((d) => `${d.severity} ${d.code} ${d.path}`);

describe('servingDiagnostics', () => {
  it('finds nothing when every action is built into leo’s mocks', () => {
    expect(diagnose(AGENCIES)).toEqual([]);
  });

  it('describes each code it reports', () => {
    for (const code of ['action-not-served', 'mock-reads-unsent-fact', 'no-adapter-credential']) {
      expect(Object.keys(DIAGNOSTIC_CODES)).toContain(code);
    }
  });

  describe('action-not-served', () => {
    it('is an error at the step’s action for a mock action neither built in nor configured', () => {
      const diagnostics = diagnose(AGENCIES, {
        builtInMocks: builtInWithout({ skatteverket: ['register-vat'] }),
      });
      expect(diagnostics).toEqual([
        {
          severity: 'error',
          code: 'action-not-served',
          path: '/steps/2/action',
          message: expect.stringContaining('step vat: nobody serves skatteverket/register-vat'),
        },
      ]);
    });

    it('is reported for every step of such an action, and for an agency with no built-in mock', () => {
      const diagnostics = diagnose(AGENCIES, {
        builtInMocks: new Map([...ALL_BUILT_IN].filter(([code]) => code !== 'kommun')),
      });
      expect(found(diagnostics)).toEqual([
        'error action-not-served /steps/4/action',
        'error action-not-served /steps/5/action',
      ]);
    });

    it('is not reported once the action has a mock configured', () => {
      const agencies = agenciesWith({
        skatteverket: {
          mocks: {
            'register-vat': { produce: { 'business.vatNumber': { generate: 'reference' } } },
          },
        },
      });
      expect(
        diagnose(agencies, { builtInMocks: builtInWithout({ skatteverket: ['register-vat'] }) }),
      ).toEqual([]);
    });

    it('is not reported for an agency served by an external adapter', () => {
      const agencies = agenciesWith({ kommun: { adapter: 'external' } });
      expect(
        diagnose(agencies, {
          builtInMocks: NO_KOMMUN,
          agenciesWithCredential: new Set(['kommun']),
        }),
      ).toEqual([]);
    });
  });

  describe('mock-reads-unsent-fact', () => {
    it('accepts a configured mock whose requires and from are all among the step’s needs', () => {
      const agencies = agenciesWith({
        skatteverket: {
          mocks: {
            'register-vat': {
              requires: ['business.orgNumber', 'business.expectedTurnover'],
              produce: { 'business.vatNumber': { from: 'business.orgNumber' } },
            },
          },
        },
      });
      expect(diagnose(agencies)).toEqual([]);
    });

    it('is an error at the step’s needs for each fact the mock reads that the step does not send', () => {
      const agencies = agenciesWith({
        skatteverket: {
          mocks: {
            // employer (step 3) needs only business.orgNumber.
            'register-employer': {
              requires: ['business.orgNumber', 'person.name', 'business.sniCode'],
              produce: { 'business.employerId': { from: 'person.name' } },
            },
          },
        },
      });
      const diagnostics = diagnose(agencies);
      // person.name is read twice (requires and from) but reported once.
      expect(diagnostics).toEqual([
        {
          severity: 'error',
          code: 'mock-reads-unsent-fact',
          path: '/steps/3/needs',
          message: expect.stringContaining(
            'step employer: the mock of skatteverket/register-employer reads business.sniCode',
          ),
        },
        {
          severity: 'error',
          code: 'mock-reads-unsent-fact',
          path: '/steps/3/needs',
          message: expect.stringContaining('reads person.name'),
        },
      ]);
    });

    it('checks a configured mock even when the action is also built in (the mock takes precedence)', () => {
      const agencies = agenciesWith({
        bolagsverket: {
          mocks: {
            'register-sole-trader': {
              produce: { 'business.orgNumber': { from: 'business.expectedTurnover' } },
            },
          },
        },
      });
      expect(found(diagnose(agencies))).toEqual(['error mock-reads-unsent-fact /steps/0/needs']);
    });

    it('reports each step of the action by its own needs', () => {
      const definition = workloadCopy();
      // Both steps use register-vat; only the second lacks business.expectedTurnover.
      definition.steps.push({
        ...stepAt(definition, 2),
        id: 'vat-again',
        needs: ['business.orgNumber'],
        produces: [],
      });
      const agencies = agenciesWith({
        skatteverket: {
          mocks: {
            'register-vat': {
              requires: ['business.expectedTurnover'],
              produce: { 'business.vatNumber': { generate: 'reference' } },
            },
          },
        },
      });
      expect(found(diagnose(agencies, {}, definition))).toEqual([
        'error mock-reads-unsent-fact /steps/6/needs',
      ]);
    });
  });

  describe('no-adapter-credential', () => {
    it('warns once per external agency without a credential, at the first step’s agency', () => {
      const agencies = agenciesWith({ kommun: { adapter: 'external' } });
      const diagnostics = diagnose(agencies);
      expect(diagnostics).toEqual([
        {
          severity: 'warning',
          code: 'no-adapter-credential',
          path: '/steps/4/agency',
          message: expect.stringContaining(
            'step food-premises: kommun is served by an external adapter',
          ),
        },
      ]);
      expect(diagnostics[0]?.message).toContain('/v1/admin/agencies/kommun/credentials');
    });

    it('warns for each external agency without a credential, and not for one with', () => {
      const agencies = agenciesWith({
        kommun: { adapter: 'external' },
        skatteverket: { adapter: 'external' },
        bolagsverket: { adapter: 'external' },
      });
      expect(
        found(diagnose(agencies, { agenciesWithCredential: new Set(['skatteverket']) })),
      ).toEqual([
        'warning no-adapter-credential /steps/0/agency',
        'warning no-adapter-credential /steps/4/agency',
      ]);
    });

    it('says nothing of an external agency with a credential, even with a mock configured', () => {
      const agencies = agenciesWith({
        kommun: {
          adapter: 'external',
          mocks: { 'business-notice': { requires: ['person.email'] } },
        },
      });
      expect(
        diagnose(agencies, {
          builtInMocks: NO_KOMMUN,
          agenciesWithCredential: new Set(['kommun']),
        }),
      ).toEqual([]);
    });
  });

  describe('what it leaves to validate', () => {
    it('says nothing of a step whose agency or action is unknown', () => {
      const definition = workloadCopy();
      stepAt(definition, 0).agency = 'lantmateriet';
      stepAt(definition, 2).action = 'register-excise';
      const diagnostics = diagnose(AGENCIES, { builtInMocks: new Map() }, definition);
      expect(diagnostics.map((d) => d.path)).not.toEqual(
        expect.arrayContaining(['/steps/0/action', '/steps/2/action']),
      );
      expect(found(diagnostics)).toEqual([
        'error action-not-served /steps/1/action',
        'error action-not-served /steps/3/action',
        'error action-not-served /steps/4/action',
        'error action-not-served /steps/5/action',
      ]);
      // validate reports those two.
      expect(
        validate(definition, catalogueOf(FACTS, AGENCIES))
          .filter((d) => d.code === 'unknown-agency' || d.code === 'unknown-action')
          .map((d) => `${d.code} ${d.path}`),
      ).toEqual(['unknown-agency /steps/0/agency', 'unknown-action /steps/2/action']);
    });

    it('copes with a definition that is not well formed', () => {
      const catalogue = catalogueOf(FACTS, AGENCIES);
      const none = serving({ builtInMocks: new Map() });
      const broken = (value: unknown) => value as LifeEventDefinition;
      expect(servingDiagnostics(broken({}), catalogue, none)).toEqual([]);
      expect(servingDiagnostics(broken({ steps: 'many' }), catalogue, none)).toEqual([]);
      expect(
        servingDiagnostics(
          broken({ steps: [null, 7, { agency: 'kommun' }, { agency: 'kommun', action: 3 }] }),
          catalogue,
          none,
        ),
      ).toEqual([]);
      // A step without id or needs is still diagnosed, named by its index.
      expect(
        servingDiagnostics(
          broken({ steps: [{ agency: 'kommun', action: 'business-notice' }] }),
          catalogue,
          none,
        ),
      ).toEqual([
        expect.objectContaining({
          code: 'action-not-served',
          path: '/steps/0/action',
          message: expect.stringMatching(/^step 0: /),
        }),
      ]);
    });
  });

  it('sorts what it finds by path', () => {
    const agencies = agenciesWith({
      kommun: { adapter: 'external' },
      skatteverket: {
        mocks: {
          'register-employer': {
            requires: ['person.name'],
            produce: { 'business.employerId': { value: 'E-1' } },
          },
        },
      },
    });
    expect(
      found(
        diagnose(agencies, {
          builtInMocks: builtInWithout({ bolagsverket: ['register-sole-trader'] }),
        }),
      ),
    ).toEqual([
      'error action-not-served /steps/0/action',
      'error mock-reads-unsent-fact /steps/3/needs',
      'warning no-adapter-credential /steps/4/agency',
    ]);
  });
});
