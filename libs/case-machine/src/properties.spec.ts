/**
 * Property-based tests of the case machine over generated life events and generated deliveries.
 *
 * A definition is a random DAG of steps (as in libs/workflow/src/properties.spec.ts): each step
 * needs some citizen inputs, some register facts (looked up from `ag-a`) and some facts produced by
 * earlier steps, optionally under a condition on boolean citizen inputs `flag.sN` (a consumer
 * carries the conditions of its producers). Each step has a random kind (automatic or decision),
 * number of attempts, failure policy and, sometimes, a deadline of a minute.
 *
 * A case of it is then driven by a model of the agencies that answers every job the machine hands
 * out, by a script drawn per step: a few retryable errors, maybe `pending` first (the decision
 * following on the queue or over REST), then completed with exactly its `produces`, rejected, or a
 * bad result. The answers are delivered in a random order with random re-deliveries of earlier
 * ones mixed in; deadline timers fire when due; sometimes the citizen cancels, and sometimes an
 * administrator retries a failed step. Every decision is kept in a transcript that the properties
 * below inspect.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { FactValue, LookupJob, StepJob, StepOutcome } from '#agency-contract';
import { createFactValidator } from '#facts';
import {
  validate,
  withDefaults,
  type Agency,
  type Catalogue,
  type DefinitionWithDefaults,
  type FactType,
  type JsonLogicRule,
  type StepDefinition,
} from '#workflow';
import {
  FINAL_CASE_STATUSES,
  FINAL_STEP_STATES,
  IDENTITY_FACT,
  buildPreview,
  decide,
  openCase,
  resolve,
  usableFacts,
  type CaseInput,
  type CaseState,
  type Decision,
  type Effect,
  type Environment,
} from './index.js';

const RUNS = 150;
const MAX_STEPS = 7;
/** No run may need more inputs than this (fresh and repeated): a bound, never reached. */
const MAX_INPUTS = 600;
const AGENCY_CODES = ['ag-a', 'ag-b', 'ag-c'] as const;
const CITIZEN_FACTS = ['in.c0', 'in.c1', 'in.c2'];
const LOOKUP_FACTS = ['in.l0', 'in.l1'];
const INPUT_FACTS = [...CITIZEN_FACTS, ...LOOKUP_FACTS];
/** A fact no step produces: what a bad result sets besides its own. */
const UNDECLARED = 'in.c0';
const PN = '199012119948';
const T0 = Date.parse('2025-03-03T09:00:00.000Z');
const flag = (i: number): string => `flag.s${i}`;
const outputs = (i: number): string[] => [`out.s${i}a`, `out.s${i}b`];

function factType(key: string, source: FactType['source'], type: string): FactType {
  return { key, schema: { type }, label: { sv: key, en: key }, sensitivity: 'public', source };
}

const FACTS: FactType[] = (() => {
  const steps = [...Array(MAX_STEPS).keys()];
  return [
    factType(IDENTITY_FACT, { kind: 'citizen' }, 'string'),
    ...CITIZEN_FACTS.map((k) => factType(k, { kind: 'citizen' }, 'string')),
    ...LOOKUP_FACTS.map((k) => factType(k, { kind: 'lookup', agency: 'ag-a' }, 'string')),
    ...steps.map((i) => factType(flag(i), { kind: 'citizen' }, 'boolean')),
    ...steps.flatMap(outputs).map((k) => factType(k, { kind: 'produced' }, 'string')),
  ];
})();

const CATALOGUE: Catalogue = {
  facts: new Map(FACTS.map((f) => [f.key, f])),
  agencies: new Map(
    AGENCY_CODES.map((code): [string, Agency] => [
      code,
      {
        code,
        name: { sv: code, en: code },
        adapter: 'mock',
        actions: [...Array(MAX_STEPS).keys()].map((i) => ({
          name: `act-${i}`,
          title: { sv: `act ${i}`, en: `act ${i}` },
          produces: outputs(i),
        })),
        lookups: code === 'ag-a' ? LOOKUP_FACTS : [],
      },
    ]),
  ),
};
const VALIDATOR = createFactValidator(FACTS);

// ---- generated definitions and scripts -------------------------------------------------------

/** How the model agency answers a step's jobs. */
const behaviour = fc.record({
  /** Retryable errors before the final answer (at least `attempts` exhausts the step). */
  errors: fc.oneof(
    { arbitrary: fc.constant(0), weight: 3 },
    { arbitrary: fc.nat({ max: 4 }), weight: 1 },
  ),
  /** Answer `pending` first; the decision follows on the queue or over REST. */
  pending: fc.boolean(),
  via: fc.constantFrom('queue', 'rest'),
  final: fc.oneof(
    { arbitrary: fc.constant('complete' as const), weight: 8 },
    { arbitrary: fc.constant('reject' as const), weight: 1 },
    // Sets an undeclared fact: on the queue the step fails; over REST it is refused and the
    // agency sends a correct decision.
    { arbitrary: fc.constant('bad-result' as const), weight: 1 },
  ),
});
type Behaviour = typeof behaviour extends fc.Arbitrary<infer T> ? T : never;

const stepSeed = fc.record({
  conditional: fc.boolean(),
  flagValue: fc.boolean(),
  inputs: fc.subarray(INPUT_FACTS),
  neededPicks: fc.array(fc.nat(), { maxLength: 3 }),
  afterPicks: fc.array(fc.nat(), { maxLength: 2 }),
  produces: fc.subarray([0, 1]),
  agency: fc.constantFrom(...AGENCY_CODES),
  kind: fc.constantFrom('automatic' as const, 'decision' as const),
  attempts: fc.integer({ min: 1, max: 4 }),
  onFailure: fc.constantFrom('action-required' as const, 'fail-case' as const),
  deadline: fc.boolean(),
  behaviour,
});
type StepSeed = typeof stepSeed extends fc.Arbitrary<infer T> ? T : never;

interface Built {
  definition: DefinitionWithDefaults;
  /** The flags each step runs under (all true: it runs; one false: it is skipped). */
  guards: Map<string, string[]>;
  flags: Record<string, boolean>;
  behaviours: Map<string, Behaviour>;
}

function condition(flags: ReadonlySet<string>): JsonLogicRule | undefined {
  const vars = [...flags].sort().map((f) => ({ var: f }));
  if (vars.length === 0) return undefined;
  return vars.length === 1 ? vars[0] : { and: vars };
}

function build(seeds: readonly StepSeed[]): Built {
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
      retry: {
        attempts: seed.attempts,
        backoff: {
          type: 'exponential',
          initialDelayMs: 1000,
          maxDelayMs: 8000,
          multiplier: 2,
          jitter: 0.5,
        },
      },
      onFailure: seed.onFailure,
      ...(seed.deadline ? { deadline: 'PT1M' } : {}),
    };
  });
  const inputs = new Set<string>();
  for (const [i, step] of steps.entries()) {
    for (const fact of step.needs) if (INPUT_FACTS.includes(fact)) inputs.add(fact);
    for (const f of guards[i] ?? []) inputs.add(f);
  }
  return {
    definition: withDefaults({
      key: 'generated',
      version: 1,
      title: { sv: 'Genererad', en: 'Generated' },
      description: { sv: 'Genererad', en: 'Generated' },
      inputs: [...inputs].sort(),
      steps,
    }),
    guards: new Map(steps.map((s, i) => [s.id, [...(guards[i] ?? [])].sort()])),
    flags: Object.fromEntries(seeds.map((seed, i) => [flag(i), seed.flagValue])),
    behaviours: new Map(seeds.map((seed, i) => [`s${i}`, seed.behaviour])),
  };
}

const scenarios = fc
  .record({
    seeds: fc.array(stepSeed, { minLength: 1, maxLength: MAX_STEPS, size: 'medium' }),
    /** The register's retryable errors before it answers (5 or more: the look-up fails). */
    lookupErrors: fc.oneof(
      { arbitrary: fc.constant(0), weight: 3 },
      { arbitrary: fc.nat({ max: 5 }), weight: 1 },
    ),
    /** Register facts it has no value for (then asked of the citizen). */
    unavailable: fc.subarray(LOOKUP_FACTS),
    /** Open with every answer, or with none (answered once asked). */
    answersAtOpen: fc.boolean(),
    /**
     * Which delivery comes next, whether an earlier one is delivered again (dup ≥ 8), and how many
     * seconds pass first.
     */
    choices: fc.array(
      fc.record({ pick: fc.nat(), dup: fc.nat({ max: 9 }), wait: fc.nat({ max: 40 }) }),
      { minLength: 20, maxLength: 150 },
    ),
    /** After this many inputs the citizen cancels. */
    cancelAt: fc.oneof(
      { arbitrary: fc.constant(null), weight: 4 },
      { arbitrary: fc.nat({ max: 40 }), weight: 1 },
    ),
    /** An administrator retries a failed step of a case needing action. */
    adminRetries: fc.boolean(),
    random: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
  })
  .map((s) => ({ ...s, built: build(s.seeds) }));
type Scenario = typeof scenarios extends fc.Arbitrary<infer T> ? T : never;

// ---- the simulation --------------------------------------------------------------------------

type Changed = Extract<Decision, { outcome: 'changed' }>;
type EffectOf<T extends Effect['type']> = Extract<Effect, { type: T }>;

/** The clock and the id counter a decision ran with: enough to run it again identically. */
interface EnvSpec {
  nowMs: number;
  firstId: number;
  random: number;
  definition: DefinitionWithDefaults;
}

function environment(spec: EnvSpec): { env: Environment; ids: () => number } {
  let n = spec.firstId;
  return {
    env: {
      definition: spec.definition,
      catalogue: CATALOGUE,
      validator: VALIDATOR,
      now: new Date(spec.nowMs),
      random: () => spec.random,
      newId: () => `id-${String(++n).padStart(4, '0')}`,
      timers: { armAfterMs: 0, sweepIntervalMs: 60_000 },
      published: [spec.definition],
    },
    ids: () => n,
  };
}

/** Something to deliver: a queue answer, a REST call or a timer (due at `dueMs`). */
interface Delivery {
  input: CaseInput;
  label: string;
  dueMs?: number;
  /** A REST decision the agency corrects after it is refused. */
  correction?: CaseInput;
}

interface Entry {
  /** undefined for the opening. */
  input: CaseInput | undefined;
  label: string;
  before: CaseState | undefined;
  spec: EnvSpec;
  decision: Decision;
  /** A first delivery (false: a repeat of an earlier one). */
  fresh: boolean;
}

interface Transcript {
  scenario: Scenario;
  entries: Entry[];
  final: CaseState;
  /** A cancel was given while the case was not final. */
  cancelled: boolean;
  /** Steps an administrator retried. */
  retried: Set<string>;
  /** An administrator saw several failed steps and retried none. */
  declined: boolean;
  /** Every delivery ran out (the case had nothing more to wait for). */
  drained: boolean;
  trace: string[];
}

const kinds = (decision: Decision): string =>
  decision.outcome === 'changed'
    ? decision.events.map((e) => (e.stepId ? `${e.type}:${e.stepId}` : e.type)).join(', ')
    : decision.outcome === 'refused'
      ? `refused ${decision.refusal.code}`
      : `unchanged (${decision.reason})`;

function effectsOf<T extends Effect['type']>(decision: Changed, type: T): EffectOf<T>[] {
  return decision.effects.filter((e): e is EffectOf<T> => e.type === type);
}

/** A step's failure is scripted: it runs out of attempts, is rejected, or answers badly on the queue. */
function scriptedToFail(b: Behaviour, attempts: number): boolean {
  if (b.errors >= attempts) return true;
  if (b.final === 'reject') return true;
  return b.final === 'bad-result' && !(b.pending && b.via === 'rest');
}

function simulate(
  scenario: Scenario,
  options: { retryAmongSeveralFailed?: boolean } = {},
): Transcript {
  const { definition, behaviours, flags } = scenario.built;
  const stepOf = (id: string) => definition.steps.find((s) => s.id === id);
  const entries: Entry[] = [];
  const trace: string[] = [];
  const mailbox: Delivery[] = [];
  const delivered: Delivery[] = [];
  const retried = new Set<string>();
  let nowMs = T0;
  let ids = 0;
  let cancelled = false;
  let cancelTried = false;
  let declined = false;
  let choice = 0;
  let state: CaseState | undefined;

  const exact = (stepId: string): Record<string, FactValue> =>
    Object.fromEntries((stepOf(stepId)?.produces ?? []).map((k) => [k, `${k}-value`]));

  const finalOutcome = (stepId: string, b: Behaviour) => {
    if (b.final === 'reject') {
      return { outcome: 'rejected' as const, code: 'refused', reason: 'on its merits' };
    }
    const produced = exact(stepId);
    if (b.final === 'bad-result') produced[UNDECLARED] = 'x';
    return { outcome: 'completed' as const, produced };
  };

  /** The model agency's answers to one job. */
  function answer(job: StepJob, agency: string): Delivery[] {
    const b = behaviours.get(job.stepId);
    if (!b) throw new Error(`no behaviour for ${job.stepId}`);
    const at = `${job.stepId}#${job.attempt}`;
    const result = (outcome: StepOutcome, label: string): Delivery => ({
      label: `${at} ${label}`,
      input: {
        type: 'step-result',
        result: {
          stepRunId: job.stepRunId,
          attempt: job.attempt,
          agency,
          result: outcome,
          reportedAt: new Date(nowMs).toISOString(),
        },
      },
    });
    if (retried.has(job.stepId)) {
      return [result({ outcome: 'completed', produced: exact(job.stepId) }, 'completed')];
    }
    if (job.attempt <= b.errors) {
      return [result({ outcome: 'retryable-error', code: 'down', reason: 'down' }, 'error')];
    }
    const final = result(finalOutcome(job.stepId, b), b.final);
    if (!b.pending) return [final];
    const pending = result({ outcome: 'pending', reference: `ref-${at}` }, 'pending');
    // Over REST the decision comes once the pending answer is taken (see `react`).
    return b.via === 'queue' ? [pending, final] : [pending];
  }

  /** The decision over REST on a step awaiting one; a bad one is corrected once refused. */
  function restDecision(
    stepId: string,
    b: Behaviour,
    run: { id: string; agency: string },
  ): Delivery {
    const outcome = finalOutcome(stepId, b);
    const input = (decision: typeof outcome): CaseInput => ({
      type: 'decision',
      agency: run.agency,
      stepRunId: run.id,
      decision,
    });
    return {
      label: `${stepId} REST ${b.final}`,
      input: input(outcome),
      ...(b.final === 'bad-result'
        ? { correction: input({ outcome: 'completed', produced: exact(stepId) }) }
        : {}),
    };
  }

  function lookupAnswer(job: LookupJob, agency: string): Delivery {
    const found = job.factKeys.filter((k) => !scenario.unavailable.includes(k));
    return {
      label: `look-up #${job.attempt}`,
      input: {
        type: 'lookup-result',
        result: {
          lookupId: job.lookupId,
          attempt: job.attempt,
          agency,
          result:
            job.attempt <= scenario.lookupErrors
              ? { outcome: 'retryable-error', code: 'down', reason: 'down' }
              : {
                  outcome: 'found',
                  facts: Object.fromEntries(found.map((k) => [k, `${k}-registered`])),
                  unavailable: job.factKeys.filter((k) => !found.includes(k)),
                },
          reportedAt: new Date(nowMs).toISOString(),
        },
      },
    };
  }

  const stepIdOf = (decision: Changed, stepRunId: string): string =>
    decision.state.runs.find((r) => r.id === stepRunId)?.stepId ?? stepRunId;

  /** What the world does about a change: agencies get jobs, timers are set. */
  function react(decision: Changed): void {
    for (const effect of decision.effects) {
      if (effect.type === 'dispatch-step') mailbox.push(...answer(effect.job, effect.agency));
      if (effect.type === 'request-lookup') mailbox.push(lookupAnswer(effect.job, effect.agency));
      if (effect.type === 'arm-timer') {
        mailbox.push({
          label: `timer ${stepIdOf(decision, effect.job.stepRunId)} ${effect.job.deadline}`,
          input: {
            type: 'timer-fired',
            stepRunId: effect.job.stepRunId,
            deadline: effect.job.deadline,
          },
          dueMs: effect.at.getTime(),
        });
      }
    }
    for (const event of decision.events) {
      if (event.type !== 'step-awaiting-decision' || event.stepId === undefined) continue;
      const b = behaviours.get(event.stepId);
      const run = decision.state.runs.find((r) => r.stepId === event.stepId);
      if (b?.pending && b.via === 'rest' && !retried.has(event.stepId) && run) {
        mailbox.push(restDecision(event.stepId, b, run));
      }
    }
  }

  function apply(input: CaseInput, label: string, fresh: boolean): Decision {
    if (!state) throw new Error('no case');
    const spec: EnvSpec = { nowMs, firstId: ids, random: scenario.random, definition };
    const { env, ids: used } = environment(spec);
    const decision = decide(state, input, env);
    entries.push({ input, label, before: state, spec, decision, fresh });
    trace.push(
      `${String(entries.length).padStart(3)} ${fresh ? '' : '(again) '}${label} → ${kinds(decision)}`,
    );
    nowMs += 1000;
    if (decision.outcome === 'changed') {
      state = decision.state;
      ids = used();
      react(decision);
    }
    return decision;
  }

  // Open.
  const answers: Record<string, unknown> = {};
  const answerFor = (key: string): unknown =>
    key.startsWith('flag.') ? (flags[key] ?? false) : `${key}-answer`;
  if (scenario.answersAtOpen) {
    for (const key of definition.inputs) {
      if (!LOOKUP_FACTS.includes(key)) answers[key] = answerFor(key);
    }
  }
  {
    const spec: EnvSpec = { nowMs, firstId: ids, random: scenario.random, definition };
    const { env, ids: used } = environment(spec);
    const decision = openCase(
      {
        type: 'open',
        caseId: 'case-1',
        subjectId: 'subject-1',
        definitionId: 'def-1',
        definitionVersion: 1,
        personalNumber: PN,
        answers,
      },
      new Map(),
      env,
    );
    entries.push({
      input: undefined,
      label: 'open',
      before: undefined,
      spec,
      decision,
      fresh: true,
    });
    trace.push(`  1 open ${JSON.stringify(answers)} → ${kinds(decision)}`);
    if (decision.outcome !== 'changed') throw new Error(`open: ${kinds(decision)}`);
    state = decision.state;
    ids = used();
    nowMs += 1000;
    react(decision);
  }

  let drained = false;
  while (entries.length < MAX_INPUTS) {
    const current: CaseState = state;
    const status = current.caseRecord.status;
    if (!cancelTried && scenario.cancelAt !== null && entries.length >= scenario.cancelAt) {
      cancelTried = true;
      const decision = apply(
        { type: 'cancel', reason: 'changed my mind', by: 'citizen' },
        'cancel',
        true,
      );
      cancelled = decision.outcome === 'changed';
      continue;
    }
    const { pick, dup, wait } = scenario.choices[choice++] ?? { pick: 0, dup: 0, wait: 1 };
    nowMs += wait * 1000;
    if (dup >= 8 && delivered.length > 0) {
      const again = delivered[pick % delivered.length];
      if (again) apply(again.input, again.label, false);
      continue;
    }
    if (
      status === 'action-required' &&
      scenario.adminRetries &&
      (mailbox.length === 0 || pick % 3 === 0)
    ) {
      const failed = current.runs.filter((r) => r.state === 'failed');
      // With several steps failed, retrying one used to leave the case running with the others
      // failed for good (fixed; see '(a′)'): told to, the administrator leaves such a case.
      if (failed.length > 1 && options.retryAmongSeveralFailed === false) {
        declined = true;
      } else if (failed[0]) {
        const { stepId } = failed[0];
        retried.add(stepId);
        apply({ type: 'retry-step', stepId }, `admin retries ${stepId}`, true);
        continue;
      }
    }
    if (mailbox.length > 0) {
      // Timers fire when due: if only timers are left, the clock moves on to the first.
      let due = mailbox.filter((d) => d.dueMs === undefined || d.dueMs <= nowMs);
      if (due.length === 0) {
        nowMs = Math.min(...mailbox.map((d) => d.dueMs ?? nowMs));
        due = mailbox.filter((d) => d.dueMs === undefined || d.dueMs <= nowMs);
      }
      const delivery = due[pick % due.length];
      if (!delivery) throw new Error('nothing due');
      mailbox.splice(mailbox.indexOf(delivery), 1);
      delivered.push(delivery);
      const decision = apply(delivery.input, delivery.label, true);
      if (
        delivery.correction &&
        decision.outcome === 'refused' &&
        decision.refusal.kind === 'invalid'
      ) {
        mailbox.push({ label: `${delivery.label} corrected`, input: delivery.correction });
      }
      continue;
    }
    if (status === 'open') {
      const facts = usableFacts(current.facts.values(), CATALOGUE, 'case-1', nowMs);
      const resolution = resolve({
        definition,
        catalogue: CATALOGUE,
        facts,
        lookups: current.lookups,
      });
      if (resolution.state === 'needs-answers') {
        const given = Object.fromEntries(resolution.toAsk.map((k) => [k, answerFor(k)]));
        apply({ type: 'answer', answers: given }, `answer ${resolution.toAsk.join(' ')}`, true);
        continue;
      }
      if (resolution.state === 'ready') {
        const preview = buildPreview({ definitionId: 'def-1', definition, facts, resolution });
        apply({ type: 'submit', previewChecksum: preview.checksum }, 'submit', true);
        continue;
      }
    }
    drained = true;
    break;
  }
  // Finally every answer, timer and REST call is delivered once more.
  for (const again of delivered) apply(again.input, again.label, false);
  return { scenario, entries, final: state, cancelled, retried, declined, drained, trace };
}

// ---- the properties --------------------------------------------------------------------------

/** Runs `check` on a transcript; a failure says what happened, input by input. */
function explain(t: Transcript, check: () => void): void {
  try {
    check();
  } catch (error) {
    if (error instanceof Error) {
      const steps = t.scenario.built.definition.steps.map(
        (s) =>
          `  ${s.id} ${s.agency}/${s.kind} needs [${s.needs.join(' ')}] produces [${s.produces.join(' ')}]` +
          `${s.when === undefined ? '' : ` when ${JSON.stringify(s.when)}`} after [${s.after.join(' ')}]` +
          ` attempts ${s.retry.attempts} ${s.onFailure} ${JSON.stringify(t.scenario.built.behaviours.get(s.id))}`,
      );
      error.message += `\n\ndefinition:\n${steps.join('\n')}\n\ninputs:\n${t.trace.join('\n')}`;
    }
    throw error;
  }
}

/** `check` holds of the transcript of every generated scenario. */
function property(
  check: (t: Transcript) => void,
  arbitrary = scenarios,
  options: Parameters<typeof simulate>[1] = {},
  parameters: fc.Parameters<[Scenario]> = {},
): void {
  fc.assert(
    fc.property(arbitrary, (scenario) => {
      const t = simulate(scenario, options);
      explain(t, () => {
        check(t);
      });
    }),
    { numRuns: RUNS, ...parameters },
  );
}

const changes = (t: Transcript) =>
  t.entries.flatMap((e) =>
    e.decision.outcome === 'changed' ? [{ ...e, decision: e.decision }] : [],
  );

/** (a): the case ends final, and failed or needing action only for a scripted failure. */
function endsFinal(t: Transcript): void {
  const { definition, behaviours, guards, flags } = t.scenario.built;
  const { status } = t.final.caseRecord;
  expect(t.drained).toBe(true);
  const fresh = t.entries.filter((e) => e.fresh).length;
  expect(fresh).toBeLessThanOrEqual(12 + definition.steps.length * 12);
  if (t.cancelled) {
    expect(status).toBe('cancelled');
    return;
  }
  expect(['completed', 'failed', 'action-required']).toContain(status);
  const dispatched = new Set(
    changes(t).flatMap((e) =>
      e.decision.events.flatMap((ev) => (ev.type === 'step-dispatched' ? [ev.stepId] : [])),
    ),
  );
  const failing = definition.steps.filter((s) => {
    const b = behaviours.get(s.id);
    return dispatched.has(s.id) && b !== undefined && scriptedToFail(b, s.retry.attempts);
  });
  const failedSteps = t.final.runs.filter((r) => r.state === 'failed').map((r) => r.stepId);
  if (failing.length === 0) expect(status).toBe('completed');
  if (status === 'failed') {
    expect(
      failing.filter((s) => s.onFailure === 'fail-case' && failedSteps.includes(s.id)),
    ).not.toEqual([]);
    expect(t.final.runs.filter((r) => !FINAL_STEP_STATES.includes(r.state))).toEqual([]);
  }
  if (status === 'action-required') {
    expect(!t.scenario.adminRetries || t.declined).toBe(true);
    expect(failedSteps.filter((id) => failing.some((s) => s.id === id))).not.toEqual([]);
  }
  if (status === 'completed') {
    // Every step ran, unless its condition was false: then it was skipped.
    const expected = Object.fromEntries(
      definition.steps.map((s) => [
        s.id,
        (guards.get(s.id) ?? []).every((f) => flags[f]) ? 'completed' : 'skipped',
      ]),
    );
    expect(Object.fromEntries(t.final.runs.map((r) => [r.stepId, r.state]))).toEqual(expected);
    const last = t.entries.findLast((e) => e.decision.outcome === 'changed');
    expect(last?.decision.outcome === 'changed' && last.decision.events.at(-1)?.type).toBe(
      'case-completed',
    );
  }
}

describe('generated definitions', () => {
  it('validate without any diagnostic', () => {
    fc.assert(
      fc.property(scenarios, ({ built }) => {
        expect(validate(built.definition, CATALOGUE)).toEqual([]);
      }),
      { numRuns: 50 },
    );
  });
});

describe('a case driven by agencies answering in any order, with repeats', () => {
  it('(a) ends in a final status within a bounded number of inputs; failed or needing action only when a failure was scripted', () => {
    property(endsFinal);
  });

  /**
   * Found by this property (fixed): retrying one of several failed steps set the case running
   * while the others stayed failed; once the retried step and the rest were done, the case never
   * completed (a failed step remained), and the remaining failed step could not be retried (the
   * case was not action-required). Smallest counterexample: two independent steps, both
   * rejected, the administrator retries one.
   */
  it('(a′) ends in a final status also when an administrator retries one of several failed steps', () => {
    const severalFail = scenarios.map((scenario) => {
      const seeds = scenario.seeds.map((seed) => ({
        ...seed,
        onFailure: 'action-required' as const,
        behaviour: { ...seed.behaviour, errors: 0, final: 'reject' as const },
      }));
      return { ...scenario, seeds, cancelAt: null, adminRetries: true, built: build(seeds) };
    });
    property(endsFinal, severalFail, { retryAmongSeveralFailed: true }, { seed: 17 });
  });

  it('(b) repeated and stale answers change nothing, a final case changes no more, and every decision is deterministic and leaves its input untouched', () => {
    property((t) => {
      let finalAt: number | undefined;
      for (const [i, entry] of t.entries.entries()) {
        const { input, decision, before, fresh } = entry;
        if (!fresh && input !== undefined) {
          if (input.type === 'decision') expect(decision.outcome).toBe('refused');
          else expect(decision).toEqual({ outcome: 'unchanged', reason: expect.any(String) });
        }
        if (decision.outcome !== 'changed' && input?.type === 'step-result') {
          expect(decision.outcome).toBe('unchanged');
        }
        // Once final, a case changes no more: every input is unchanged or refused, except a
        // completed case's look-up answer (a register's fresh value, recorded for later cases).
        const completedLookup =
          input?.type === 'lookup-result' && before?.caseRecord.status === 'completed';
        if (finalAt !== undefined && !completedLookup) {
          expect({ at: i + 1, label: entry.label, outcome: decision.outcome }).toEqual({
            at: i + 1,
            label: entry.label,
            outcome: expect.not.stringMatching(/^changed$/),
          });
        }
        if (decision.outcome === 'changed') {
          const { status } = decision.state.caseRecord;
          if (FINAL_CASE_STATUSES.includes(status)) finalAt ??= i;
        }
        if (input === undefined || before === undefined) continue;
        const copy = structuredClone(before);
        const again = decide(before, input, environment(entry.spec).env);
        expect(before).toEqual(copy);
        expect(again).toEqual(decision);
      }
    });
  });

  it('(c) every dispatched job carries exactly its step’s needs, valued as recorded, with a disclosure of the same records', () => {
    property((t) => {
      const { definition } = t.scenario.built;
      for (const { decision } of changes(t)) {
        const { facts, runs } = decision.state;
        const dispatches = effectsOf(decision, 'dispatch-step');
        const disclosures = effectsOf(decision, 'disclose');
        const dispatched = decision.events.filter((e) => e.type === 'step-dispatched');
        expect(dispatches.map((d) => d.job.stepId)).toEqual(dispatched.map((e) => e.stepId));
        for (const { agency, job, jobId } of dispatches) {
          const step = definition.steps.find((s) => s.id === job.stepId);
          const run = runs.find((r) => r.id === job.stepRunId);
          expect({ step: step?.id, run: run?.stepId }).toEqual({
            step: job.stepId,
            run: job.stepId,
          });
          if (!step || !run) continue;
          expect(agency).toBe(step.agency);
          expect(jobId).toBe(`${run.id}.${String(job.attempt)}`);
          expect(run.attempt).toBe(job.attempt);
          expect(Object.keys(job.facts).sort()).toEqual([...step.needs].sort());
          const records = step.needs.map((k) => facts.get(k));
          expect(job.facts).toEqual(
            Object.fromEntries(records.map((r, i) => [step.needs[i], r?.value])),
          );
          const ids = records.map((r) => r?.id);
          expect(run.disclosedFactIds).toEqual(ids);
          expect(disclosures.filter((d) => d.disclosure.stepRunId === run.id)).toEqual([
            {
              type: 'disclose',
              disclosure: {
                subjectId: 'subject-1',
                caseId: 'case-1',
                stepRunId: run.id,
                agency: step.agency,
                factRecordIds: ids,
                factKeys: step.needs,
                basis: 'consent',
              },
            },
          ]);
        }
        // A look-up sends the identity alone.
        for (const { job, agency } of effectsOf(decision, 'request-lookup')) {
          const identity = facts.get(IDENTITY_FACT);
          expect(job.facts).toEqual({ [IDENTITY_FACT]: PN });
          expect(disclosures.filter((d) => d.disclosure.lookupId === job.lookupId)).toEqual([
            {
              type: 'disclose',
              disclosure: {
                subjectId: 'subject-1',
                caseId: 'case-1',
                lookupId: job.lookupId,
                agency,
                factRecordIds: [identity?.id],
                factKeys: [IDENTITY_FACT],
                basis: 'lookup',
              },
            },
          ]);
        }
        expect(disclosures).toHaveLength(
          dispatches.length + effectsOf(decision, 'request-lookup').length,
        );
      }
    });
  });

  it('(d) an agency’s answer adds fact records only for its step’s produces, and a refused one none', () => {
    property((t) => {
      const { definition } = t.scenario.built;
      for (const { input, decision, before } of changes(t)) {
        if (input?.type !== 'step-result' && input?.type !== 'decision') {
          expect(decision.writes.facts.filter((f) => f.source === 'agency')).toEqual([]);
          continue;
        }
        const stepRunId = input.type === 'decision' ? input.stepRunId : input.result.stepRunId;
        const run = before?.runs.find((r) => r.id === stepRunId);
        const step = definition.steps.find((s) => s.id === run?.stepId);
        if (!run || !step) throw new Error(`no step run ${stepRunId}`);
        const completed = decision.events.some((e) => e.type === 'step-completed');
        expect(decision.writes.facts.map((f) => f.factKey).sort()).toEqual(
          completed ? [...step.produces].sort() : [],
        );
        for (const record of decision.writes.facts) {
          expect(record).toMatchObject({
            source: 'agency',
            agency: run.agency,
            stepRunId: run.id,
            caseId: 'case-1',
            value: `${record.factKey}-value`,
          });
          expect(decision.state.facts.get(record.factKey)).toBe(record);
        }
        if (decision.events.some((e) => e.type === 'result-refused')) {
          expect(decision.writes.facts).toEqual([]);
          expect(decision.state.runs.find((r) => r.id === run.id)?.state).toBe('failed');
        }
      }
    });
  });

  it('(e) the events of a run add up to its final revision, each change advancing it by its own', () => {
    property((t) => {
      let revision = 0;
      let events = 0;
      for (const { decision } of t.entries) {
        if (decision.outcome !== 'changed') continue;
        events += decision.events.length;
        expect(decision.state.caseRecord.revision).toBe(revision + decision.events.length);
        revision = decision.state.caseRecord.revision;
      }
      expect(t.final.caseRecord.revision).toBe(events);
    });
  });

  it('(f) a deadline escalates a step at most once, and only when it has passed', () => {
    property((t) => {
      const seen = new Set<string>();
      for (const { decision, spec } of changes(t)) {
        for (const event of decision.events) {
          if (event.type !== 'step-overdue') continue;
          const key = `${event.stepId ?? ''} ${event.data.deadline}`;
          expect(seen.has(key)).toBe(false);
          seen.add(key);
          expect(Date.parse(event.data.deadline)).toBeLessThanOrEqual(spec.nowMs + 1000);
        }
      }
    });
  });
});
