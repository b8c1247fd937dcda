import { analyseRule, evaluateNested, knownKeys, longestPrefix, nestFacts } from './conditions.js';
import { dependencies, producersByFact } from './graph.js';
import type {
  Catalogue,
  LifeEventDefinition,
  Plan,
  PlannedStatus,
  PlannedStep,
  StepDefinition,
  StepState,
} from './types.js';

const SUCCEEDED: ReadonlySet<PlannedStatus> = new Set(['completed', 'skipped']);
const FINISHED: ReadonlySet<PlannedStatus> = new Set([
  'completed',
  'skipped',
  'failed',
  'cancelled',
]);
const BROKEN: ReadonlySet<PlannedStatus> = new Set(['failed', 'cancelled']);

const FROM_STATE: Readonly<Record<Exclude<StepState, 'pending'>, PlannedStatus>> = {
  ready: 'ready',
  dispatched: 'in-progress',
  'awaiting-decision': 'in-progress',
  'awaiting-citizen': 'in-progress',
  completed: 'completed',
  failed: 'failed',
  skipped: 'skipped',
  cancelled: 'cancelled',
};

interface Planned extends PlannedStep {
  /** Facts that count toward the plan's `missing` if they are unknown inputs. */
  wants: string[];
}

function sortedUnique(values: Iterable<string>): string[] {
  return [...new Set(values)].sort();
}

interface Graph {
  /** The steps array the graph was made from: a definition changed since gets a new graph. */
  from: readonly StepDefinition[];
  length: number;
  producers: Map<string, string[]>;
  deps: Map<string, string[]>;
  steps: Map<string, StepDefinition>;
}

/** A definition's dependency graph, made once per definition object (they are not changed). */
const graphs = new WeakMap<LifeEventDefinition, Graph>();

function graphOf(definition: LifeEventDefinition): Graph {
  const cached = graphs.get(definition);
  if (cached && cached.from === definition.steps && cached.length === definition.steps.length) {
    return cached;
  }
  const graph: Graph = {
    from: definition.steps,
    length: definition.steps.length,
    producers: producersByFact(definition),
    deps: dependencies(definition),
    steps: new Map(definition.steps.map((s) => [s.id, s])),
  };
  graphs.set(definition, graph);
  return graph;
}

const factKeySets = new WeakMap<Catalogue['facts'], ReadonlySet<string>>();

function factKeysOf(catalogue: Catalogue): ReadonlySet<string> {
  let keys = factKeySets.get(catalogue.facts);
  if (!keys) {
    keys = new Set(catalogue.facts.keys());
    factKeySets.set(catalogue.facts, keys);
  }
  return keys;
}

/**
 * What can happen next in a case: each step's status given the facts known so far and the
 * engine's step states, and which input facts to obtain. Pure and deterministic; expects a
 * definition that `validate` accepted (it throws on an invalid `when`).
 *
 * A pending step is `skipped` when its condition is false; `undecided` when the condition needs
 * an input not known yet; `waiting` while a dependency (or the producer of a fact its condition
 * reads) has not finished; `blocked` when a dependency failed or was cancelled, or a fact it needs
 * is missing with nothing left to produce it; else `ready`. A dependency that will be skipped
 * counts as done, so one plan sees through skipped steps.
 */
export function plan(
  definition: LifeEventDefinition,
  known: Readonly<Record<string, unknown>>,
  states: Readonly<Partial<Record<string, StepState>>>,
  catalogue: Catalogue,
): Plan {
  const { producers, deps, steps } = graphOf(definition);
  const knownSet = knownKeys(known);
  const factKeys = factKeysOf(catalogue);
  let nested: Record<string, unknown> | undefined;
  const factOf = (path: string): string =>
    longestPrefix(path, factKeys) ?? longestPrefix(path, knownSet) ?? path;
  const memo = new Map<string, Planned>();
  const visiting = new Set<string>();

  const statusOf = (id: string): PlannedStatus => planStep(id).status;
  const unfinished = (ids: Iterable<string>): string[] =>
    [...ids].filter((id) => !FINISHED.has(statusOf(id)));
  // Unknown facts that nothing still to run will produce.
  const lacking = (facts: readonly string[]): string[] =>
    sortedUnique(
      facts.filter((f) => !knownSet.has(f) && unfinished(producers.get(f) ?? []).length === 0),
    );

  function planStep(id: string): Planned {
    const done = memo.get(id);
    if (done !== undefined) return done;
    const step = steps.get(id);
    // Only a cyclic definition (refused by validate) gets here twice; it waits forever.
    if (visiting.has(id) || step === undefined) {
      return { id, status: 'waiting', waitingFor: [], missingFacts: [], wants: [] };
    }
    visiting.add(id);
    const state = Object.hasOwn(states, id) ? states[id] : undefined;
    const result =
      state === undefined || state === 'pending' ? planPending(step) : fromState(step, state);
    visiting.delete(id);
    memo.set(id, result);
    return result;
  }

  function fromState(step: StepDefinition, state: Exclude<StepState, 'pending'>): Planned {
    const status = FROM_STATE[state];
    const idle = status === 'completed' || status === 'skipped' || status === 'cancelled';
    return { id: step.id, status, waitingFor: [], missingFacts: [], wants: idle ? [] : step.needs };
  }

  function planPending(step: StepDefinition): Planned {
    const id = step.id;
    const outcome =
      step.when === undefined
        ? true
        : evaluateNested(step.when, (nested ??= nestFacts(known)), (path) =>
            knownSet.has(factOf(path)),
          );
    if (outcome === false) {
      return { id, status: 'skipped', waitingFor: [], missingFacts: [], wants: [] };
    }
    const stepDeps = deps.get(id) ?? [];
    const waitingFor = sortedUnique(stepDeps.filter((d) => !SUCCEEDED.has(statusOf(d))));
    // A step after a failure cannot run until someone acts: its condition need not be decided
    // now, and its needs are wanted only if it is known to run.
    if (waitingFor.some((d) => BROKEN.has(statusOf(d)))) {
      const needs = outcome === true ? step.needs : [];
      return { id, status: 'blocked', waitingFor, missingFacts: lacking(needs), wants: needs };
    }
    if (outcome === 'unknown') {
      const reads = analyseRule(step.when).reads.map((r) => factOf(r.path));
      const unknownFacts = sortedUnique(reads.filter((f) => !knownSet.has(f)));
      const pendingProducers = unknownFacts.flatMap((f) => unfinished(producers.get(f) ?? []));
      // Only the condition's facts are wanted: its needs are asked once it is known to run.
      const base = { id, missingFacts: lacking(unknownFacts), wants: unknownFacts };
      if (pendingProducers.length > 0) {
        return {
          ...base,
          status: 'waiting',
          waitingFor: sortedUnique([...waitingFor, ...pendingProducers]),
        };
      }
      const neverProduced = unknownFacts.some((f) => producers.has(f));
      return { ...base, status: neverProduced ? 'blocked' : 'undecided', waitingFor };
    }
    const missingFacts = lacking(step.needs);
    const base = { id, waitingFor, missingFacts, wants: step.needs };
    if (waitingFor.length > 0) return { ...base, status: 'waiting' };
    return { ...base, status: missingFacts.length > 0 ? 'blocked' : 'ready' };
  }

  const planned = definition.steps.map((s) => planStep(s.id));
  const inputs = new Set(definition.inputs);
  const missing = sortedUnique(
    planned
      .flatMap((p) => p.wants)
      .filter((f) => inputs.has(f) && !knownSet.has(f) && !producers.has(f)),
  );
  const citizen: string[] = [];
  const lookup: { key: string; agency: string }[] = [];
  for (const key of missing) {
    const source = catalogue.facts.get(key)?.source;
    if (source?.kind === 'lookup') lookup.push({ key, agency: source.agency });
    else citizen.push(key);
  }
  return {
    steps: planned.map(({ id, status, waitingFor, missingFacts }) => ({
      id,
      status,
      waitingFor,
      missingFacts,
    })),
    missing: { citizen, lookup },
    complete: planned.every((p) => FINISHED.has(p.status)),
  };
}
