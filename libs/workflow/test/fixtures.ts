/**
 * Test fixtures of the workflow library: a small catalogue (facts of every source, three
 * agencies) and the standard benchmark life event (/work/shared/bench/WORKLOAD.md) written in it.
 */
import type {
  Agency,
  Catalogue,
  FactSource,
  FactType,
  LifeEventDefinition,
  Sensitivity,
  StepDefinition,
} from '../src/index.js';
import { parseDefinition } from '../src/index.js';

function fact(
  key: string,
  source: FactSource,
  schema: Record<string, unknown>,
  sensitivity: Sensitivity = 'personal',
): FactType {
  return { key, schema, label: { sv: key, en: key }, sensitivity, source };
}

const citizen: FactSource = { kind: 'citizen' };
const produced: FactSource = { kind: 'produced' };
const folkbokforing: FactSource = { kind: 'lookup', agency: 'skatteverket' };

export const FACTS: FactType[] = [
  fact('person.personalNumber', citizen, { type: 'string', format: 'personnummer' }),
  fact('person.name', folkbokforing, { type: 'string' }),
  fact('person.address', folkbokforing, {
    type: 'object',
    properties: { street: { type: 'string' }, postalCode: { type: 'string' } },
  }),
  fact('business.name', citizen, { type: 'string' }, 'public'),
  fact('business.legalForm', citizen, { enum: ['sole-trader', 'limited-company'] }, 'public'),
  fact('business.sniCode', citizen, { type: 'string', pattern: '^\\d{5}$' }, 'public'),
  fact('business.expectedTurnover', citizen, { type: 'integer', minimum: 0 }, 'public'),
  fact('business.willEmploy', citizen, { type: 'boolean' }, 'public'),
  fact('business.servesFood', citizen, { type: 'boolean' }, 'public'),
  fact('business.orgNumber', produced, { type: 'string' }, 'public'),
  fact('business.fTaxApproved', produced, { type: 'boolean' }, 'public'),
  fact('business.vatNumber', produced, { type: 'string' }, 'public'),
  fact('business.employerId', produced, { type: 'string' }, 'public'),
  fact('business.foodRegistrationId', produced, { type: 'string' }, 'public'),
  // Not used by the workload: for tests of unused inputs and of facts no action supplies.
  fact('person.email', citizen, { type: 'string', format: 'email' }),
  fact('business.bankgiro', produced, { type: 'string' }, 'public'),
];

function action(name: string, en: string, produces: string[] = []): Agency['actions'][number] {
  return { name, title: { sv: en, en }, produces };
}

export const AGENCIES: Agency[] = [
  {
    code: 'bolagsverket',
    name: { sv: 'Bolagsverket', en: 'Companies Registration Office' },
    adapter: 'mock',
    actions: [action('register-sole-trader', 'Register a sole trader', ['business.orgNumber'])],
    lookups: [],
  },
  {
    code: 'skatteverket',
    name: { sv: 'Skatteverket', en: 'Swedish Tax Agency' },
    adapter: 'mock',
    actions: [
      action('register-f-tax', 'Register for F-tax', ['business.fTaxApproved']),
      action('register-vat', 'Register for VAT', ['business.vatNumber']),
      action('register-employer', 'Register as employer', ['business.employerId']),
    ],
    lookups: ['person.name', 'person.address'],
  },
  {
    code: 'kommun',
    name: { sv: 'Kommunen', en: 'Municipality' },
    adapter: 'mock',
    actions: [
      action('register-food-premises', 'Register food premises', ['business.foodRegistrationId']),
      action('business-notice', 'Business notice'),
    ],
    lookups: [],
  },
];

export function catalogueOf(facts: FactType[], agencies: Agency[]): Catalogue {
  return {
    facts: new Map(facts.map((f) => [f.key, f])),
    agencies: new Map(agencies.map((a) => [a.code, a])),
  };
}

export const CATALOGUE: Catalogue = catalogueOf(FACTS, AGENCIES);

/** Start a business as a sole trader: steps A to F of the benchmark workload. */
export const WORKLOAD_YAML = `
key: start-business
version: 1
title: { sv: Starta företag, en: Start a business }
description:
  sv: Registrera en enskild firma hos Bolagsverket, Skatteverket och kommunen.
  en: Register a sole trader with Bolagsverket, Skatteverket and the municipality.
inputs:
  - person.personalNumber
  - person.name
  - person.address
  - business.name
  - business.legalForm
  - business.sniCode
  - business.expectedTurnover
  - business.willEmploy
  - business.servesFood
steps:
  - id: register-business # A
    agency: bolagsverket
    action: register-sole-trader
    kind: automatic
    title: { sv: Registrera företaget, en: Register the business }
    needs: [person.name, person.personalNumber, business.name, business.legalForm, business.sniCode]
    produces: [business.orgNumber]
  - id: f-tax # B
    agency: skatteverket
    action: register-f-tax
    kind: decision
    needs: [business.orgNumber, business.expectedTurnover]
    produces: [business.fTaxApproved]
    deadline: P30D
  - id: vat # C
    agency: skatteverket
    action: register-vat
    kind: automatic
    when: { ">": [{ var: business.expectedTurnover }, 120000] }
    needs: [business.orgNumber, business.expectedTurnover]
    produces: [business.vatNumber]
  - id: employer # D
    agency: skatteverket
    action: register-employer
    kind: automatic
    when: { var: business.willEmploy }
    needs: [business.orgNumber]
    produces: [business.employerId]
  - id: food-premises # E
    agency: kommun
    action: register-food-premises
    kind: decision
    when: { var: business.servesFood }
    needs: [business.name, person.address]
    produces: [business.foodRegistrationId]
  - id: business-notice # F
    agency: kommun
    action: business-notice
    kind: automatic
    needs: [business.orgNumber, person.address]
    produces: []
    after: [f-tax, vat, employer]
    retry:
      attempts: 3
      backoff: { type: exponential, initialDelayMs: 500, maxDelayMs: 60000, multiplier: 3, jitter: 0.5 }
`;

function parseWorkload(): LifeEventDefinition {
  const { definition, diagnostics } = parseDefinition(WORKLOAD_YAML);
  if (definition === undefined) {
    throw new Error(`workload fixture does not parse: ${JSON.stringify(diagnostics)}`);
  }
  return definition;
}

export const WORKLOAD: LifeEventDefinition = parseWorkload();

/** The facts of one benchmark case. */
export const WORKLOAD_FACTS: Readonly<Record<string, unknown>> = {
  'person.personalNumber': '199012119948',
  'person.name': 'Tolvan Tolvansson',
  'person.address': { street: 'Storgatan 1', postalCode: '11122', town: 'Stockholm' },
  'business.name': 'Tolvans Kod',
  'business.legalForm': 'sole-trader',
  'business.sniCode': '62010',
  'business.expectedTurnover': 500000,
  'business.willEmploy': true,
  'business.servesFood': false,
};

/** A deep copy to mutate in a test. */
export function workloadCopy(): LifeEventDefinition {
  return structuredClone(WORKLOAD);
}

/** A definition's step by index, for tests that change one. */
export function stepAt(definition: LifeEventDefinition, index: number): StepDefinition {
  const step = definition.steps[index];
  if (step === undefined) throw new Error(`no step ${index}`);
  return step;
}
