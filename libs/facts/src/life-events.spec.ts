/**
 * A light check of config/life-events against the catalogue: known facts, agencies and actions,
 * and produces within the action's. The full validator (conditions, cycles, producers) is
 * libs/workflow's; this keeps the seed files honest from the catalogue's side, and checks that the
 * standard workload (shared/bench/WORKLOAD.md) is what start-business.yaml runs.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { parse as parseYaml } from 'yaml';
import type { JsonLogicRule, LifeEventDefinition, StepDefinition } from '#workflow';
import { parseAgencies, parseFactCatalogue } from './catalogue.js';
import { createFactValidator } from './validator.js';

const configUrl = new URL('../../../config/', import.meta.url);
const read = (name: string) => readFileSync(new URL(name, configUrl), 'utf8');

const { facts } = parseFactCatalogue(read('facts.yaml'));
const { agencies } = parseAgencies(read('agencies.yaml'));
const factByKey = new Map(facts.map((f) => [f.key, f]));
const agencyByCode = new Map(agencies.map((a) => [a.code, a]));

const files = readdirSync(new URL('life-events/', configUrl))
  .filter((name) => name.endsWith('.yaml'))
  .sort();
const definitions = files.map((file) => ({
  file,
  definition: parseYaml(read(`life-events/${file}`)) as LifeEventDefinition,
}));

const ALLOWED_OPERATORS = new Set(
  '== === != !== > >= < <= ! !! and or if ?: in cat substr + - * / % min max var missing missing_some'.split(
    ' ',
  ),
);
const KEBAB = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;
const ISO_DURATION = /^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$/;

/** The facts a condition reads, checking its operators on the way. */
function readsOf(rule: JsonLogicRule, into = new Set<string>()): Set<string> {
  if (Array.isArray(rule)) {
    for (const item of rule) readsOf(item, into);
  } else if (rule !== null && typeof rule === 'object') {
    for (const [operator, argument] of Object.entries(rule)) {
      expect(ALLOWED_OPERATORS).toContain(operator);
      if (operator === 'var') {
        expect(typeof argument).toBe('string');
        into.add(argument as string);
      } else readsOf(argument, into);
    }
  }
  return into;
}

describe.each(definitions)('life event $file', ({ file, definition }) => {
  const producers = new Map<string, StepDefinition[]>();
  for (const step of definition.steps) {
    for (const key of step.produces) producers.set(key, [...(producers.get(key) ?? []), step]);
  }

  it('has a key matching its file, version 1 and texts in both languages', () => {
    expect(`${definition.key}.yaml`).toBe(file);
    expect(definition.version).toBe(1);
    for (const text of [definition.title, definition.description]) {
      expect(text.sv.length).toBeGreaterThan(0);
      expect(text.en.length).toBeGreaterThan(0);
    }
  });

  it('has inputs that are catalogue facts a citizen gives or an agency is asked for', () => {
    expect(new Set(definition.inputs).size).toBe(definition.inputs.length);
    for (const key of definition.inputs) {
      const fact = factByKey.get(key);
      expect(fact).toBeDefined();
      expect(fact?.source.kind).not.toBe('produced');
    }
  });

  it('has unique kebab-case step ids', () => {
    const ids = definition.steps.map((s) => s.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(KEBAB);
  });

  it.each(definition.steps)('step $id uses a known agency, action and facts', (step) => {
    const action = agencyByCode.get(step.agency)?.actions.find((a) => a.name === step.action);
    expect(action).toBeDefined();
    for (const key of [...step.needs, ...step.produces]) expect(factByKey.has(key)).toBe(true);
    for (const key of step.produces) expect(action?.produces).toContain(key);
    for (const key of step.needs) {
      const available =
        definition.inputs.includes(key) || (producers.get(key) ?? []).some((p) => p.id !== step.id);
      expect({ key, available }).toEqual({ key, available: true });
    }
    for (const id of step.after ?? []) expect(definition.steps.map((s) => s.id)).toContain(id);
    if (step.when !== undefined) {
      for (const key of readsOf(step.when)) {
        expect(definition.inputs.includes(key) || producers.has(key)).toBe(true);
      }
    }
    if (step.deadline !== undefined) expect(step.deadline).toMatch(ISO_DURATION);
  });

  it('routes every municipality step by exactly one municipality code (decision 0024)', () => {
    for (const step of definition.steps.filter((s) => s.agency === 'kommun')) {
      const codes = step.needs.filter((key) => factByKey.get(key)?.schema.format === 'kommunkod');
      expect({ step: step.id, codes: codes.length }).toEqual({ step: step.id, codes: 1 });
    }
  });

  it('uses every input', () => {
    const used = new Set(
      definition.steps.flatMap((s) => [...s.needs, ...(s.when ? readsOf(s.when) : [])]),
    );
    for (const key of definition.inputs)
      expect({ key, used: used.has(key) }).toEqual({ key, used: true });
  });
});

// ---- the standard workload ---------------------------------------------------------------

type Facts = Record<string, unknown>;

/** Just enough JSON Logic for the seeded conditions; libs/workflow has the real evaluator. */
function evaluate(rule: JsonLogicRule, data: Facts): unknown {
  if (Array.isArray(rule)) return rule.map((r) => evaluate(r, data));
  if (rule === null || typeof rule !== 'object') return rule;
  const [operator, raw] = Object.entries(rule)[0] ?? [];
  const args = (Array.isArray(raw) ? raw : [raw]).map((a) => evaluate(a as JsonLogicRule, data));
  switch (operator) {
    case 'var':
      return data[String(args[0])] ?? null;
    // JSON Logic's == and != are loose.
    case '==':
      return args[0] == args[1];
    case '!=':
      return args[0] != args[1];
    case '>':
      return Number(args[0]) > Number(args[1]);
    case '!':
      return !args[0];
    case 'in':
      return Array.isArray(args[1]) && args[1].includes(args[0]);
    default:
      throw new Error(`operator ${String(operator)} not supported in this test`);
  }
}

/** The steps that run for these facts, each with the steps it waits for (producers and after). */
function run(definition: LifeEventDefinition, given: Facts) {
  const known: Facts = { ...given };
  const ran = new Map<string, string[]>();
  const skipped = new Set<string>();
  let progressed = true;
  while (progressed) {
    progressed = false;
    for (const step of definition.steps) {
      if (ran.has(step.id) || skipped.has(step.id)) continue;
      const waitsFor = definition.steps
        .filter((other) => other.id !== step.id)
        .filter(
          (other) =>
            (step.after ?? []).includes(other.id) ||
            other.produces.some((k) => step.needs.includes(k)),
        );
      if (!waitsFor.every((other) => ran.has(other.id) || skipped.has(other.id))) continue;
      progressed = true;
      if (step.when !== undefined && !evaluate(step.when, known)) {
        skipped.add(step.id);
        continue;
      }
      for (const key of step.needs)
        expect({ step: step.id, key, known: key in known }).toEqual({
          step: step.id,
          key,
          known: true,
        });
      for (const key of step.produces) known[key] = `<${key}>`;
      ran.set(
        step.id,
        waitsFor.filter((other) => ran.has(other.id)).map((other) => other.id),
      );
    }
  }
  return { ran, skipped };
}

describe('the standard workload on start-business', () => {
  const startBusiness = definitions.find((d) => d.definition.key === 'start-business')?.definition;
  if (!startBusiness) throw new Error('config/life-events/start-business.yaml is missing');
  const validator = createFactValidator(facts);

  // The standard workload's facts, shared with the engine's tests.
  const soleTrader = JSON.parse(
    readFileSync(new URL('../../../test/fixtures/workload-facts.json', import.meta.url), 'utf8'),
  ) as Facts;

  it('has valid workload facts', () => {
    for (const [key, value] of Object.entries(soleTrader)) {
      expect({ key, problems: validator.validate(key, value) }).toEqual({ key, problems: [] });
    }
  });

  it('runs exactly A–D and F, with F after B, C and D and E skipped', () => {
    const { ran, skipped } = run(startBusiness, soleTrader);
    expect([...ran.keys()].sort()).toEqual(
      [
        'business-notice',
        'employer-registration',
        'f-tax',
        'register-sole-trader',
        'vat-registration',
      ].sort(),
    );
    expect(skipped).toEqual(
      new Set(['register-limited-company', 'food-premises', 'alcohol-licence']),
    );
    expect(ran.get('register-sole-trader')).toEqual([]);
    for (const id of ['f-tax', 'vat-registration', 'employer-registration']) {
      expect(ran.get(id)).toEqual(['register-sole-trader']);
    }
    expect(new Set(ran.get('business-notice'))).toEqual(
      new Set(['register-sole-trader', 'f-tax', 'vat-registration', 'employer-registration']),
    );
  });

  it('sends each workload step the facts WORKLOAD.md names', () => {
    const needs = (id: string) => startBusiness.steps.find((s) => s.id === id)?.needs;
    expect(needs('register-sole-trader')).toEqual([
      'person.name',
      'person.personalNumber',
      'business.name',
      'business.legalForm',
      'business.sniCode',
    ]);
    expect(needs('f-tax')).toEqual(['business.orgNumber', 'business.expectedTurnover']);
    // Exactly what WORKLOAD.md says F needs: nothing more leaves leo.
    expect(needs('business-notice')).toEqual([
      'business.orgNumber',
      'person.address',
      'person.municipalityCode',
    ]);
  });

  it('skips VAT at or below the threshold and employer registration without staff', () => {
    const { ran } = run(startBusiness, {
      ...soleTrader,
      'business.expectedTurnover': 120000,
      'business.willEmployStaff': false,
    });
    expect([...ran.keys()].sort()).toEqual(['business-notice', 'f-tax', 'register-sole-trader']);
  });

  it('registers a limited company instead, with food and an alcohol licence after it', () => {
    const { ran } = run(startBusiness, {
      ...soleTrader,
      'business.legalForm': 'aktiebolag',
      'business.shareCapital': 25000,
      'business.servesFood': true,
      'business.servesAlcohol': true,
      'business.premisesAddress': { street: 'Kungsgatan 3', postalCode: '352 33', town: 'Växjö' },
      'business.premisesMunicipalityCode': '0780',
    });
    expect(ran.has('register-limited-company')).toBe(true);
    expect(ran.has('register-sole-trader')).toBe(false);
    expect(ran.get('alcohol-licence')).toEqual(expect.arrayContaining(['food-premises']));
    expect(ran.size).toBe(7);
  });

  it('produces the organisation number under a condition and its negation, over a two-valued legal form', () => {
    const producers = startBusiness.steps.filter((s) => s.produces.includes('business.orgNumber'));
    const isSoleTrader = { '==': [{ var: 'business.legalForm' }, 'enskild-naringsidkare'] };
    expect(producers.map((s) => [s.id, s.when])).toEqual([
      ['register-sole-trader', isSoleTrader],
      ['register-limited-company', { '!': isSoleTrader }],
    ]);
    expect(factByKey.get('business.legalForm')?.schema.enum).toEqual([
      'enskild-naringsidkare',
      'aktiebolag',
    ]);
  });
});
