/**
 * Property-based tests over generated definitions: random DAGs of steps in which each step needs
 * some inputs and some facts produced by earlier steps, optionally under a condition on a boolean
 * citizen input `flag.sN`, keeping every consumer under the conditions of its producers.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  DIAGNOSTIC_CODES,
  STEP_KINDS,
  STEP_STATES,
  dependencies,
  plan,
  validate,
  type Agency,
  type Catalogue,
  type FactType,
  type JsonLogicRule,
  type LifeEventDefinition,
  type PlannedStatus,
  type StepDefinition,
  type StepState,
} from './index.js';

const RUNS = 200;
const MAX_STEPS = 8;
const AGENCY_CODES = ['ag-a', 'ag-b', 'ag-c'] as const;
const CITIZEN_FACTS = ['in.c0', 'in.c1', 'in.c2', 'in.c3'];
const LOOKUP_FACTS = ['in.l0', 'in.l1'];
const INPUT_FACTS = [...CITIZEN_FACTS, ...LOOKUP_FACTS];
const flag = (i: number): string => `flag.s${i}`;
const outputs = (i: number): string[] => [`out.s${i}a`, `out.s${i}b`];

function factType(key: string, source: FactType['source']): FactType {
  return { key, schema: {}, label: { sv: key, en: key }, sensitivity: 'public', source };
}

const CATALOGUE: Catalogue = (() => {
  const steps = [...Array(MAX_STEPS).keys()];
  const facts = [
    ...CITIZEN_FACTS.map((k) => factType(k, { kind: 'citizen' })),
    ...LOOKUP_FACTS.map((k) => factType(k, { kind: 'lookup', agency: 'ag-a' })),
    ...steps.map((i) => factType(flag(i), { kind: 'citizen' })),
    ...steps.flatMap(outputs).map((k) => factType(k, { kind: 'produced' })),
  ];
  const agencies: Agency[] = AGENCY_CODES.map((code) => ({
    code,
    name: { sv: code, en: code },
    adapter: 'mock',
    actions: steps.map((i) => ({
      name: `act-${i}`,
      title: { sv: `act ${i}`, en: `act ${i}` },
      produces: outputs(i),
    })),
    lookups: code === 'ag-a' ? LOOKUP_FACTS : [],
  }));
  return {
    facts: new Map(facts.map((f) => [f.key, f])),
    agencies: new Map(agencies.map((a) => [a.code, a])),
  };
})();

const stepSeed = fc.record({
  conditional: fc.boolean(),
  inputs: fc.subarray(INPUT_FACTS),
  neededPicks: fc.array(fc.nat(), { maxLength: 3 }),
  afterPicks: fc.array(fc.nat(), { maxLength: 2 }),
  produces: fc.subarray([0, 1]),
  agency: fc.constantFrom(...AGENCY_CODES),
  kind: fc.constantFrom(...STEP_KINDS),
});

type StepSeed = typeof stepSeed extends fc.Arbitrary<infer T> ? T : never;

function condition(flags: ReadonlySet<string>): JsonLogicRule | undefined {
  const vars = [...flags].sort().map((f) => ({ var: f }));
  if (vars.length === 0) return undefined;
  return vars.length === 1 ? vars[0] : { and: vars };
}

function build(seeds: readonly StepSeed[]): LifeEventDefinition {
  const guards: Set<string>[] = [];
  const available: { fact: string; producer: number }[] = [];
  const steps: StepDefinition[] = seeds.map((seed, i) => {
    const needed = [
      ...new Map(
        available.length === 0
          ? []
          : seed.neededPicks.map((p) => {
              const pick = available[p % available.length] ?? { fact: '', producer: 0 };
              return [pick.fact, pick] as const;
            }),
      ).values(),
    ];
    // A consumer carries the conditions of the producers it needs (the need-conditional rule).
    const guard = new Set(needed.flatMap(({ producer }) => [...(guards[producer] ?? [])]));
    if (seed.conditional) guard.add(flag(i));
    guards.push(guard);
    const produces = seed.produces.map((k) => outputs(i)[k] ?? '');
    for (const fact of produces) available.push({ fact, producer: i });
    const when = condition(guard);
    return {
      id: `s${i}`,
      agency: seed.agency,
      action: `act-${i}`,
      kind: seed.kind,
      needs: [...seed.inputs, ...needed.map((n) => n.fact)],
      produces,
      ...(when === undefined ? {} : { when }),
      ...(i === 0 ? {} : { after: [...new Set(seed.afterPicks.map((p) => `s${p % i}`))] }),
    };
  });
  const inputs = new Set<string>();
  for (const [i, step] of steps.entries()) {
    for (const fact of step.needs) if (INPUT_FACTS.includes(fact)) inputs.add(fact);
    for (const f of guards[i] ?? []) inputs.add(f);
  }
  return {
    key: 'generated',
    version: 1,
    title: { sv: 'Genererad', en: 'Generated' },
    description: { sv: 'Genererad', en: 'Generated' },
    inputs: [...inputs].sort(),
    steps,
  };
}

const definitions = fc.array(stepSeed, { minLength: 1, maxLength: MAX_STEPS }).map(build);

/** A definition with known facts and engine states drawn at random (not necessarily consistent). */
const situations = definitions.chain((definition) => {
  const facts = [...definition.inputs, ...definition.steps.flatMap((s) => s.produces)];
  return fc.record({
    definition: fc.constant(definition),
    known: fc.dictionary(
      facts.length === 0 ? fc.constant('in.c0') : fc.constantFrom(...facts),
      fc.oneof(fc.boolean(), fc.string(), fc.integer()),
    ),
    states: fc.dictionary(
      fc.constantFrom(...definition.steps.map((s) => s.id)),
      fc.constantFrom(...STEP_STATES),
    ),
  });
});

const SUCCEEDED: ReadonlySet<PlannedStatus> = new Set(['completed', 'skipped']);

describe('generated definitions', () => {
  it('validate without any diagnostic', () => {
    fc.assert(
      fc.property(definitions, (definition) => {
        expect(validate(definition, CATALOGUE)).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  });

  it('(a) plan never readies a step before all its dependencies completed or were skipped', () => {
    fc.assert(
      fc.property(situations, ({ definition, known, states }) => {
        const result = plan(definition, known, states, CATALOGUE);
        expect(plan(definition, known, states, CATALOGUE)).toEqual(result);
        const status = new Map(result.steps.map((s) => [s.id, s.status]));
        const deps = dependencies(definition);
        for (const step of result.steps) {
          const state = states[step.id] ?? 'pending';
          if (step.status !== 'ready' || state !== 'pending') continue;
          for (const dep of deps.get(step.id) ?? []) {
            expect(SUCCEEDED.has(status.get(dep) ?? 'waiting')).toBe(true);
          }
          expect(step.waitingFor).toEqual([]);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('(b) plan never asks for a fact that is known or produced by a step', () => {
    // Also when a definition wrongly lists produced facts among its inputs (input-not-askable).
    const withProducedInputs = situations.chain((situation) => {
      const produced = situation.definition.steps.flatMap((s) => s.produces);
      return fc.subarray(produced).map((extra) => ({
        ...situation,
        definition: {
          ...situation.definition,
          inputs: [...situation.definition.inputs, ...extra],
        },
      }));
    });
    fc.assert(
      fc.property(withProducedInputs, ({ definition, known, states }) => {
        const { missing } = plan(definition, known, states, CATALOGUE);
        const produced = new Set(definition.steps.flatMap((s) => s.produces));
        const asked = [...missing.citizen, ...missing.lookup.map((l) => l.key)];
        expect(new Set(asked).size).toBe(asked.length);
        for (const fact of asked) {
          expect(known[fact]).toBeUndefined();
          expect(produced.has(fact)).toBe(false);
          expect(definition.inputs).toContain(fact);
        }
        for (const { key, agency } of missing.lookup) {
          expect(CATALOGUE.facts.get(key)?.source).toEqual({ kind: 'lookup', agency });
        }
      }),
      { numRuns: RUNS },
    );
  });

  it.each([true, false])(
    '(c) a simulated case with every flag %s completes within steps + 2 rounds, never stuck',
    (flags) => {
      fc.assert(
        fc.property(definitions, (definition) => {
          const known: Record<string, unknown> = {};
          const states: Record<string, StepState> = {};
          const limit = definition.steps.length + 2;
          let rounds = 0;
          for (;;) {
            rounds++;
            expect(rounds).toBeLessThanOrEqual(limit);
            const before = plan(definition, known, states, CATALOGUE);
            if (before.complete) {
              expect(before.steps.filter((s) => s.status === 'blocked')).toEqual([]);
              break;
            }
            for (const key of [
              ...before.missing.citizen,
              ...before.missing.lookup.map((l) => l.key),
            ]) {
              known[key] = key.startsWith('flag.') ? flags : `${key}-answer`;
            }
            const current = plan(definition, known, states, CATALOGUE);
            const asked = new Set([
              ...current.missing.citizen,
              ...current.missing.lookup.map((l) => l.key),
            ]);
            for (const step of current.steps) {
              // Blocked only on facts being asked now, never on anything that cannot come.
              if (step.status === 'blocked') {
                expect(step.missingFacts.filter((f) => !asked.has(f))).toEqual([]);
              }
              if (step.status === 'skipped') states[step.id] = 'skipped';
              if (step.status !== 'ready') continue;
              states[step.id] = 'completed';
              const produces = definition.steps.find((s) => s.id === step.id)?.produces ?? [];
              for (const fact of produces) known[fact] = `${fact}-value`;
            }
          }
        }),
        { numRuns: RUNS },
      );
    },
  );
});

function pointers(value: unknown, at = ''): string[] {
  if (typeof value !== 'object' || value === null) return [at];
  const children = Object.entries(value).flatMap(([k, v]) =>
    pointers(v, `${at}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`),
  );
  return [at, ...children];
}

function replaceAt(root: unknown, pointer: string, replacement: unknown): unknown {
  if (pointer === '') return replacement;
  const copy = structuredClone(root) as Record<string, unknown>;
  const tokens = pointer
    .split('/')
    .slice(1)
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
  const last = tokens.pop() ?? '';
  let node: Record<string, unknown> = copy;
  for (const token of tokens) node = node[token] as Record<string, unknown>;
  node[last] = replacement;
  return copy;
}

function wellFormed(diagnostics: unknown): void {
  expect(Array.isArray(diagnostics)).toBe(true);
  for (const d of diagnostics as {
    path: unknown;
    code: unknown;
    severity: unknown;
    message: unknown;
  }[]) {
    expect(typeof d.path).toBe('string');
    expect(d.path === '' || String(d.path).startsWith('/')).toBe(true);
    expect(Object.keys(DIAGNOSTIC_CODES)).toContain(d.code);
    expect(['error', 'warning']).toContain(d.severity);
    expect(typeof d.message).toBe('string');
  }
}

describe('validate on arbitrary input', () => {
  it('(d) never throws on any JSON value and gives pointers as paths', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        wellFormed(validate(value, CATALOGUE));
      }),
      { numRuns: RUNS * 5 },
    );
  });

  it('(d) never throws on a generated definition with any part replaced by any JSON value', () => {
    const mutants = definitions.chain((definition) => {
      const all = pointers(definition);
      return fc
        .tuple(fc.constantFrom(...all), fc.jsonValue({ maxDepth: 4 }))
        .map(([pointer, value]) => replaceAt(definition, pointer, value));
    });
    fc.assert(
      fc.property(mutants, (mutant) => {
        wellFormed(validate(mutant, CATALOGUE));
      }),
      { numRuns: RUNS * 5 },
    );
  });
});
