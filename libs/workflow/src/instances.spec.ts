import { describe, expect, it } from '@jest/globals';
import { AGENCIES, FACTS, WORKLOAD, catalogueOf, workloadCopy } from '../test/fixtures.js';
import {
  agencyByCode,
  queuedAgencies,
  routeStep,
  routeTo,
  routingNeed,
  servingDiagnostics,
  validate,
  type Agency,
  type AgencyInstance,
  type FactType,
} from './index.js';

/**
 * Agencies of many parties (decision 0024): the fixture's `kommun` made one, routed by a
 * municipality code, with Stockholm (mock) and Göteborg (external) onboarded.
 */
const MUNICIPALITY_CODE: FactType = {
  key: 'person.municipalityCode',
  schema: { type: 'string', format: 'kommunkod' },
  label: { sv: 'Kommun', en: 'Municipality' },
  sensitivity: 'personal',
  source: { kind: 'lookup', agency: 'skatteverket' },
};
const PREMISES_CODE: FactType = {
  ...MUNICIPALITY_CODE,
  key: 'business.premisesMunicipalityCode',
  source: { kind: 'citizen' },
};
const FACTS_WITH_CODES = [...FACTS, MUNICIPALITY_CODE, PREMISES_CODE];

const STOCKHOLM: AgencyInstance = { id: '0180', name: { sv: 'Stockholms stad', en: 'Stockholm' } };
const GOTEBORG: AgencyInstance = {
  id: '1480',
  name: { sv: 'Göteborgs stad', en: 'Gothenburg' },
  adapter: 'external',
};

function withKommun(onboarded: AgencyInstance[]): Agency[] {
  return AGENCIES.map((agency) =>
    agency.code === 'kommun'
      ? { ...agency, instances: { routedBy: 'kommunkod', onboarded } }
      : agency,
  );
}

/** The workload, its municipality steps needing the municipality codes given. */
function workloadNeeding(codes: string[]) {
  const definition = workloadCopy();
  definition.inputs.push(...codes);
  for (const step of definition.steps) {
    if (step.agency === 'kommun') step.needs = [...step.needs, ...codes];
  }
  return definition;
}

describe('an agency of many parties', () => {
  const agencies = withKommun([STOCKHOLM, GOTEBORG]);
  const catalogue = catalogueOf(FACTS_WITH_CODES, agencies);
  const kommun = agencies.find((a) => a.code === 'kommun') as Agency;

  it('has a queue per onboarded instance, and none of its own', () => {
    const queued = queuedAgencies(agencies);
    expect(queued.map((a) => [a.code, a.adapter])).toEqual([
      ['bolagsverket', 'mock'],
      ['skatteverket', 'mock'],
      ['kommun-0180', 'mock'],
      ['kommun-1480', 'external'],
    ]);
    // Each instance does every action of the agency, and is the source of no look-up.
    expect(queued[2]).toMatchObject({ actions: kommun.actions, lookups: [] });
  });

  it('names an instance, onboarded or not, and nothing that is not one', () => {
    expect(agencyByCode(catalogue, 'kommun-0180')).toMatchObject({
      agency: { code: 'kommun-0180', name: STOCKHOLM.name },
      onboarded: true,
    });
    expect(agencyByCode(catalogue, 'kommun-0114')).toMatchObject({
      agency: { code: 'kommun-0114', name: { sv: 'Kommunen 0114', en: 'Municipality 0114' } },
      onboarded: false,
    });
    expect(agencyByCode(catalogue, 'kommun')).toMatchObject({ onboarded: false });
    expect(agencyByCode(catalogue, 'skatteverket')).toMatchObject({ onboarded: true });
    expect(agencyByCode(catalogue, 'skatteverket-1')).toBeUndefined();
    expect(agencyByCode(catalogue, 'nobody')).toBeUndefined();
  });

  it('routes by the one need of its format', () => {
    expect(
      routingNeed(catalogue, kommun, ['business.orgNumber', 'person.municipalityCode']),
    ).toEqual({ key: 'person.municipalityCode' });
    expect(routingNeed(catalogue, kommun, ['business.orgNumber'])).toEqual({
      problem: 'none',
      keys: [],
    });
    expect(
      routingNeed(catalogue, kommun, [
        'person.municipalityCode',
        'business.premisesMunicipalityCode',
      ]),
    ).toEqual({
      problem: 'several',
      keys: ['person.municipalityCode', 'business.premisesMunicipalityCode'],
    });
    expect(routeTo(kommun, '0180')).toEqual({ code: 'kommun-0180', onboarded: true });
    expect(routeTo(kommun, '0114')).toEqual({ code: 'kommun-0114', onboarded: false });
    // A value that cannot name an instance reaches none.
    expect(routeTo(kommun, 'Kommun 0180')).toEqual({ code: 'kommun', onboarded: false });
    expect(routeTo(kommun, 180)).toEqual({ code: 'kommun', onboarded: false });
    const skatteverket = agencies[1] as Agency;
    expect(routeTo(skatteverket, '0180')).toEqual({ code: 'skatteverket', onboarded: true });
    // A step, with its needs' values as known so far.
    const needs = ['business.orgNumber', 'person.municipalityCode'];
    const values: Record<string, unknown> = { 'person.municipalityCode': '1480' };
    expect(routeStep(catalogue, 'kommun', needs, (key) => values[key])).toEqual({
      code: 'kommun-1480',
      onboarded: true,
    });
    expect(routeStep(catalogue, 'kommun', needs, () => undefined)).toEqual({
      code: 'kommun',
      onboarded: false,
    });
    expect(routeStep(catalogue, 'kommun', ['business.orgNumber'], (key) => values[key])).toEqual({
      code: 'kommun',
      onboarded: false,
    });
    expect(routeStep(catalogue, 'bolagsverket', needs, () => undefined)).toEqual({
      code: 'bolagsverket',
      onboarded: true,
    });
  });

  it('refuses a life event whose step to it needs no routing fact, or several', () => {
    const codes = (definition: typeof WORKLOAD) =>
      validate(definition, catalogue)
        .filter((d) => d.code === 'agency-route-unclear')
        .map((d) => d.path);
    // The fixture's municipality steps (E and F) need no municipality code.
    expect(codes(WORKLOAD)).toEqual(['/steps/4/needs', '/steps/5/needs']);
    expect(codes(workloadNeeding(['person.municipalityCode']))).toEqual([]);
    expect(
      codes(workloadNeeding(['person.municipalityCode', 'business.premisesMunicipalityCode'])),
    ).toEqual(['/steps/4/needs', '/steps/5/needs']);
    const [several] = validate(
      workloadNeeding(['person.municipalityCode', 'business.premisesMunicipalityCode']),
      catalogue,
    ).filter((d) => d.code === 'agency-route-unclear');
    expect(several?.message).toContain(
      'needs several (person.municipalityCode, business.premisesMunicipalityCode)',
    );
  });

  it('warns when no instance is onboarded, and names the external ones without a credential', () => {
    const definition = workloadNeeding(['person.municipalityCode']);
    // Every action built in but the municipality's.
    const builtIn = new Map(
      AGENCIES.filter((a) => a.code !== 'kommun').map((a) => [
        a.code,
        new Set(a.actions.map((action) => action.name)),
      ]),
    );
    const serving = { builtInMocks: builtIn, agenciesWithCredential: new Set<string>() };
    const none = servingDiagnostics(
      definition,
      catalogueOf(FACTS_WITH_CODES, withKommun([])),
      serving,
    );
    expect(none.filter((d) => d.code === 'no-instance-onboarded').map((d) => d.path)).toEqual([
      '/steps/4/agency',
    ]);

    const some = servingDiagnostics(definition, catalogue, {
      builtInMocks: new Map(builtIn).set(
        'kommun',
        new Set(['register-food-premises', 'business-notice']),
      ),
      agenciesWithCredential: new Set(),
    });
    expect(some.map((d) => `${d.severity} ${d.code}`)).toContain('warning no-adapter-credential');
    expect(some.find((d) => d.code === 'no-adapter-credential')?.message).toContain(
      'kommun-1480 is served by an external adapter',
    );
    // Stockholm is a mock whose actions are built in: served.
    expect(some.filter((d) => d.severity === 'error')).toEqual([]);

    // With no mock of the action anywhere, Stockholm's mock cannot serve it.
    const unserved = servingDiagnostics(definition, catalogue, serving);
    expect(unserved.filter((d) => d.code === 'action-not-served').map((d) => d.path)).toEqual([
      '/steps/4/action',
      '/steps/5/action',
    ]);
    const allExternal = catalogueOf(
      FACTS_WITH_CODES,
      withKommun([{ ...STOCKHOLM, adapter: 'external' }, GOTEBORG]),
    );
    expect(
      servingDiagnostics(definition, allExternal, {
        ...serving,
        agenciesWithCredential: new Set(['kommun-0180', 'kommun-1480']),
      }),
    ).toEqual([]);
  });
});
