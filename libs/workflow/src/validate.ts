import { routingNeed } from './instances.js';
import { canonicalJson } from './canonical.js';
import {
  analyseRule,
  conditionsExclude,
  conjunctsOf,
  describeRule,
  isStaticallyFalse,
  longestPrefix,
  normaliseRule,
  type RuleAnalysis,
} from './conditions.js';
import { sortDiagnostics, type DiagnosticCode } from './diagnostics.js';
import { nominalDurationMs, parseIsoDuration } from './duration.js';
import { shapeDiagnostics } from './schema.js';
import type { Catalogue, Diagnostic, JsonLogicRule } from './types.js';

/** A string found in an array of the definition, with its index there. */
interface Entry {
  value: string;
  index: number;
}

interface Condition {
  analysis: RuleAnalysis;
  /** Undefined when the rule has problems: nothing about it can then be concluded. */
  conjuncts: JsonLogicRule[] | undefined;
}

/**
 * What semantic checks see of one step. Built leniently from a value that may not match the
 * schema: a field of the wrong type reads as absent, so every check can run on whatever is there.
 */
interface StepView {
  index: number;
  pointer: string;
  id: string | undefined;
  agency: string | undefined;
  action: string | undefined;
  needs: Entry[];
  produces: Entry[];
  after: Entry[];
  when: Condition | undefined;
  retry: unknown;
  deadline: unknown;
}

const DAY_MS = 86_400_000;
const DEADLINE_MIN_MS = 60_000;
const DEADLINE_MAX_MS = 2 * 365 * DAY_MS;

/**
 * Every problem of a definition against a catalogue, like a compiler: never throws, never stops
 * at the first. Shape problems (`invalid-shape`) come with the semantic problems that could still
 * be found; a semantic problem at a path the shape check already faulted is left out, since it is
 * the same problem seen twice. Sorted by path, then code.
 */
export function validate(definition: unknown, catalogue: Catalogue): Diagnostic[] {
  const shape = shapeDiagnostics(definition);
  if (typeof definition !== 'object' || definition === null || Array.isArray(definition)) {
    return sortDiagnostics(shape);
  }
  const shapePaths = new Set(shape.map((d) => d.path));
  const semantic = new Checker(definition as Record<string, unknown>, catalogue).run();
  return sortDiagnostics([...shape, ...semantic.filter((d) => !shapePaths.has(d.path))]);
}

function strings(value: unknown): Entry[] {
  if (!Array.isArray(value)) return [];
  const entries: Entry[] = [];
  value.forEach((item: unknown, index) => {
    if (typeof item === 'string') entries.push({ value: item, index });
  });
  return entries;
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readCondition(record: Record<string, unknown>): Condition | undefined {
  if (!Object.hasOwn(record, 'when')) return undefined;
  const rule: unknown = record.when;
  const analysis = analyseRule(rule);
  return {
    analysis,
    conjuncts: analysis.problems.length === 0 ? conjunctsOf(normaliseRule(rule)) : undefined,
  };
}

function readStep(value: unknown, index: number): StepView | undefined {
  if (!isRecord(value)) return undefined;
  return {
    index,
    pointer: `/steps/${index}`,
    id: optionalString(value.id),
    agency: optionalString(value.agency),
    action: optionalString(value.action),
    needs: strings(value.needs),
    produces: strings(value.produces),
    after: strings(value.after),
    when: readCondition(value),
    retry: value.retry,
    deadline: value.deadline,
  };
}

class Checker {
  private readonly diagnostics: Diagnostic[] = [];
  private readonly inputs: Entry[];
  private readonly inputKeys: Set<string>;
  private readonly steps: StepView[];
  private readonly byIndex = new Map<number, StepView>();
  /** Step index of the first step with each id. */
  private readonly idIndex = new Map<string, number>();
  /** Indices of the steps producing each fact, in definition order. */
  private readonly producers = new Map<string, number[]>();
  /** Each step's dependencies (after and the producers of its needs), by index. */
  private readonly dependencies = new Map<number, Set<number>>();
  private readonly factKeys: Set<string>;
  private unreachable = new Set<number>();

  constructor(
    definition: Record<string, unknown>,
    private readonly catalogue: Catalogue,
  ) {
    this.factKeys = new Set(catalogue.facts.keys());
    this.inputs = strings(definition.inputs);
    this.inputKeys = new Set(this.inputs.map((e) => e.value));
    const steps = Array.isArray(definition.steps) ? (definition.steps as unknown[]) : [];
    this.steps = steps.flatMap((s, i) => readStep(s, i) ?? []);
    for (const step of this.steps) {
      this.byIndex.set(step.index, step);
      if (step.id !== undefined && !this.idIndex.has(step.id))
        this.idIndex.set(step.id, step.index);
      for (const fact of new Set(step.produces.map((e) => e.value))) {
        this.producers.set(fact, [...(this.producers.get(fact) ?? []), step.index]);
      }
    }
    for (const step of this.steps) {
      const deps = new Set<number>();
      for (const entry of step.after) {
        const index = this.idIndex.get(entry.value);
        if (index !== undefined) deps.add(index);
      }
      for (const entry of step.needs) {
        for (const producer of this.producers.get(entry.value) ?? []) deps.add(producer);
      }
      this.dependencies.set(step.index, deps);
    }
  }

  run(): Diagnostic[] {
    this.checkInputs();
    this.unreachable = this.findUnreachable();
    for (const step of this.steps) {
      this.checkReferences(step);
      this.checkNeeds(step);
      this.checkCondition(step);
      this.checkRetry(step);
      this.checkDeadline(step);
    }
    this.checkDuplicateIds();
    this.checkProducedTwice();
    this.checkCycles();
    this.checkUnusedInputs();
    return this.diagnostics;
  }

  private report(code: DiagnosticCode, path: string, message: string): void {
    const severity = code === 'input-unused' ? 'warning' : 'error';
    this.diagnostics.push({ severity, code, path, message });
  }

  private label(index: number): string {
    const id = this.byIndex.get(index)?.id;
    return id === undefined ? `#${index}` : id;
  }

  private isProduced(fact: string): boolean {
    return (this.producers.get(fact)?.length ?? 0) > 0;
  }

  private conjuncts(index: number): JsonLogicRule[] | undefined {
    const when = this.byIndex.get(index)?.when;
    return when === undefined ? [] : when.conjuncts;
  }

  // ---- inputs ---------------------------------------------------------------------------

  private checkInputs(): void {
    for (const entry of this.inputs) {
      const path = `/inputs/${entry.index}`;
      const fact = this.catalogue.facts.get(entry.value);
      if (fact === undefined) {
        this.report('unknown-fact', path, `"${entry.value}" is not in the fact catalogue`);
      } else if (fact.source.kind === 'produced') {
        this.report(
          'input-not-askable',
          path,
          `"${entry.value}" is produced by agencies: it can be neither asked of the citizen nor looked up`,
        );
      }
    }
  }

  private isAskableInput(fact: string): boolean {
    const source = this.catalogue.facts.get(fact)?.source.kind;
    return this.inputKeys.has(fact) && (source === 'citizen' || source === 'lookup');
  }

  private checkUnusedInputs(): void {
    const used = new Set<string>();
    for (const step of this.steps) {
      for (const entry of step.needs) used.add(entry.value);
      for (const read of step.when?.analysis.reads ?? []) {
        const fact = longestPrefix(read.path, this.factKeys);
        if (fact !== undefined) used.add(fact);
      }
    }
    for (const entry of this.inputs) {
      if (!used.has(entry.value) && this.catalogue.facts.has(entry.value)) {
        this.report(
          'input-unused',
          `/inputs/${entry.index}`,
          `"${entry.value}" is neither needed by a step nor read by a condition`,
        );
      }
    }
  }

  // ---- agencies, actions, steps -----------------------------------------------------------

  private checkReferences(step: StepView): void {
    for (const entry of step.after) {
      if (!this.idIndex.has(entry.value)) {
        this.report(
          'unknown-step',
          `${step.pointer}/after/${entry.index}`,
          `no step has the id "${entry.value}"`,
        );
      }
    }
    for (const entry of step.produces) {
      if (!this.catalogue.facts.has(entry.value)) {
        this.report(
          'unknown-fact',
          `${step.pointer}/produces/${entry.index}`,
          `"${entry.value}" is not in the fact catalogue`,
        );
      }
    }
    if (step.agency === undefined) return;
    const agency = this.catalogue.agencies.get(step.agency);
    if (agency === undefined) {
      this.report(
        'unknown-agency',
        `${step.pointer}/agency`,
        `"${step.agency}" is not an agency in the catalogue`,
      );
      return;
    }
    if (step.action === undefined) return;
    const action = agency.actions.find((a) => a.name === step.action);
    if (action === undefined) {
      const known = agency.actions.map((a) => a.name).join(', ');
      this.report(
        'unknown-action',
        `${step.pointer}/action`,
        `"${step.action}" is not an action of ${agency.code}${known === '' ? '' : ` (it has: ${known})`}`,
      );
      return;
    }
    if (agency.instances) {
      const route = routingNeed(
        this.catalogue,
        agency,
        step.needs.map((entry) => entry.value),
      );
      if ('problem' in route) {
        this.report(
          'agency-route-unclear',
          `${step.pointer}/needs`,
          route.problem === 'none'
            ? `${agency.code} is many agencies, each step going to the one a need of format ${agency.instances.routedBy} names, and this step needs none (add one, e.g. the municipality code)`
            : `${agency.code} is many agencies, each step going to the one a need of format ${agency.instances.routedBy} names, and this step needs several (${route.keys.join(', ')}): keep one`,
        );
      }
    }
    for (const entry of step.produces) {
      // An unknown fact is reported as such; that the action cannot supply it follows from that.
      if (this.catalogue.facts.has(entry.value) && !action.produces.includes(entry.value)) {
        this.report(
          'produces-not-supplied',
          `${step.pointer}/produces/${entry.index}`,
          `${agency.code} ${action.name} does not produce "${entry.value}"`,
        );
      }
    }
  }

  private checkDuplicateIds(): void {
    for (const step of this.steps) {
      if (step.id !== undefined && this.idIndex.get(step.id) !== step.index) {
        this.report(
          'duplicate-step-id',
          `${step.pointer}/id`,
          `step id "${step.id}" is already used by step ${this.idIndex.get(step.id) ?? ''}`,
        );
      }
    }
  }

  // ---- facts flowing between steps --------------------------------------------------------

  private checkNeeds(step: StepView): void {
    for (const entry of step.needs) {
      const path = `${step.pointer}/needs/${entry.index}`;
      const fact = entry.value;
      if (!this.catalogue.facts.has(fact)) {
        this.report('unknown-fact', path, `"${fact}" is not in the fact catalogue`);
        continue;
      }
      if (!this.isProduced(fact)) {
        if (!this.isAskableInput(fact)) {
          this.report(
            'need-unavailable',
            path,
            `"${fact}" is neither an input that can be asked or looked up nor produced by any step`,
          );
        }
        continue;
      }
      if (this.unreachable.has(step.index)) continue;
      const producers = (this.producers.get(fact) ?? []).filter(
        (p) => p !== step.index && !this.unreachable.has(p),
      );
      if (producers.length > 0 && !this.guarded(step.index, producers)) {
        this.report(
          'need-conditional',
          path,
          `"${fact}" is produced only when ${this.describeGuards(producers)}, which this step's condition does not include: it could run while the producer is skipped`,
        );
      }
    }
  }

  /**
   * Whether the consumer's condition implies that one of the producers runs. Approximated
   * syntactically: some producer's conjuncts all appear among the consumer's, or two producers
   * differ only in one conjunct and its negation (together they run whenever their common
   * conjuncts hold) and those appear. Unknown (an invalid condition) counts as guarded: that
   * problem is reported on its own.
   */
  private guarded(consumer: number, producers: readonly number[]): boolean {
    const own = this.conjuncts(consumer);
    const guards = producers.map((p) => this.conjuncts(p));
    if (own === undefined || guards.some((g) => g === undefined)) return true;
    const ownTexts = new Set(own.map(canonicalJson));
    const holds = (guard: readonly JsonLogicRule[]): boolean =>
      guard.every((c) => ownTexts.has(canonicalJson(c)));
    const sets = guards as JsonLogicRule[][];
    if (sets.some(holds)) return true;
    for (const [i, a] of sets.entries()) {
      for (const b of sets.slice(i + 1)) {
        const common = complementaryUnion(a, b);
        if (common !== undefined && holds(common)) return true;
      }
    }
    return false;
  }

  private describeGuards(producers: readonly number[]): string {
    return producers
      .map((p) => {
        const guard = this.conjuncts(p) ?? [];
        const rule = guard.length === 1 ? guard[0] : { and: guard };
        return `${guard.length === 0 ? 'always' : describeRule(rule)} (step ${this.label(p)})`;
      })
      .join(' or ');
  }

  private checkProducedTwice(): void {
    for (const [fact, producers] of this.producers) {
      const live = producers.filter((p) => !this.unreachable.has(p));
      for (const [i, later] of live.entries()) {
        const clash = live.slice(0, i).find((earlier) => !this.exclusive(earlier, later));
        if (clash === undefined) continue;
        const step = this.byIndex.get(later);
        const entry = step?.produces.find((e) => e.value === fact);
        if (step === undefined || entry === undefined) continue;
        this.report(
          'produced-twice',
          `${step.pointer}/produces/${entry.index}`,
          `"${fact}" is also produced by step ${this.label(clash)}, and both steps can run`,
        );
      }
    }
  }

  /** Provably never both run; an invalid condition counts as exclusive to avoid a cascade. */
  private exclusive(a: number, b: number): boolean {
    const x = this.conjuncts(a);
    const y = this.conjuncts(b);
    return x === undefined || y === undefined || conditionsExclude(x, y);
  }

  // ---- conditions -------------------------------------------------------------------------

  private checkCondition(step: StepView): void {
    const when = step.when;
    if (when === undefined) return;
    const base = `${step.pointer}/when`;
    for (const problem of when.analysis.problems) {
      this.report('when-invalid', `${base}${problem.pointer}`, problem.message);
    }
    const ancestors = this.ancestors(step.index);
    for (const read of when.analysis.reads) {
      const path = `${base}${read.pointer}`;
      const fact = longestPrefix(read.path, this.factKeys);
      if (fact === undefined) {
        this.report(
          'unknown-fact',
          path,
          `"${read.path}" is not a fact in the catalogue, nor within one`,
        );
        continue;
      }
      const producers = this.producers.get(fact) ?? [];
      if (producers.length === 0) {
        if (!this.inputKeys.has(fact)) {
          this.report(
            'when-unavailable-fact',
            path,
            `reads "${fact}", which is neither an input nor produced by any step`,
          );
        }
        continue;
      }
      const before = producers.filter((p) => ancestors.has(p) && !this.unreachable.has(p));
      if (before.length === 0) {
        this.report(
          'when-unavailable-fact',
          path,
          `reads "${fact}", produced by step ${producers.map((p) => this.label(p)).join(', ')}, which does not always run before this one: add it to after or needs`,
        );
      } else if (!this.guarded(step.index, before)) {
        this.report(
          'when-unavailable-fact',
          path,
          `reads "${fact}", which is produced only when ${this.describeGuards(before)}; this condition does not include that`,
        );
      }
    }
  }

  /**
   * Steps that can never run: a condition false whatever the facts, or a need that only steps
   * which never run produce (to a fixed point, since that spreads downstream).
   */
  private findUnreachable(): Set<number> {
    const unreachable = new Set<number>();
    const causes = new Map<number, { path: string; message: string }>();
    for (const step of this.steps) {
      const conjuncts = step.when?.conjuncts;
      if (conjuncts !== undefined && isStaticallyFalse(conjuncts)) {
        unreachable.add(step.index);
        causes.set(step.index, {
          path: `${step.pointer}/when`,
          message: 'the condition is false whatever the facts, so the step never runs',
        });
      }
    }
    for (let changed = true; changed;) {
      changed = false;
      for (const step of this.steps) {
        if (unreachable.has(step.index)) continue;
        const entry = step.needs.find((e) => {
          const producers = this.producers.get(e.value) ?? [];
          return producers.length > 0 && producers.every((p) => unreachable.has(p));
        });
        if (entry === undefined) continue;
        unreachable.add(step.index);
        changed = true;
        causes.set(step.index, {
          path: `${step.pointer}/needs/${entry.index}`,
          message: `"${entry.value}" comes only from steps that never run, so this step never runs`,
        });
      }
    }
    for (const cause of causes.values()) this.report('unreachable-step', cause.path, cause.message);
    return unreachable;
  }

  private ancestors(index: number): Set<number> {
    const seen = new Set<number>();
    const queue = [...(this.dependencies.get(index) ?? [])];
    for (let next = queue.pop(); next !== undefined; next = queue.pop()) {
      if (seen.has(next)) continue;
      seen.add(next);
      queue.push(...(this.dependencies.get(next) ?? []));
    }
    return seen;
  }

  // ---- cycles -----------------------------------------------------------------------------

  private checkCycles(): void {
    const dependents = new Map<number, number[]>();
    for (const [step, deps] of this.dependencies) {
      for (const dep of deps) dependents.set(dep, [...(dependents.get(dep) ?? []), step]);
    }
    for (const component of stronglyConnected(
      this.steps.map((s) => s.index),
      (n) => dependents.get(n) ?? [],
    )) {
      const first = Math.min(...component);
      const cyclic = component.length > 1 || (dependents.get(first) ?? []).includes(first);
      if (!cyclic) continue;
      const members = new Set(component);
      const cycle = shortestCycle(first, (n) =>
        (dependents.get(n) ?? []).filter((m) => members.has(m)),
      );
      this.report(
        'cycle',
        `/steps/${first}`,
        `steps depend on each other in a cycle: ${cycle.map((n) => this.label(n)).join(' → ')}`,
      );
    }
  }

  // ---- policies ---------------------------------------------------------------------------

  private checkRetry(step: StepView): void {
    if (!isRecord(step.retry)) return;
    const base = `${step.pointer}/retry`;
    const range = (path: string, value: unknown, min: number, max: number, what = ''): void => {
      if (typeof value === 'number' && (value < min || value > max)) {
        this.report(
          'retry-out-of-range',
          path,
          `must be ${what}between ${String(min)} and ${String(max)}, not ${String(value)}`,
        );
      }
    };
    range(`${base}/attempts`, step.retry.attempts, 1, 20);
    const backoff = step.retry.backoff;
    if (!isRecord(backoff)) return;
    const initial = backoff.initialDelayMs;
    range(`${base}/backoff/initialDelayMs`, initial, 100, 3_600_000);
    range(
      `${base}/backoff/maxDelayMs`,
      backoff.maxDelayMs,
      typeof initial === 'number' ? initial : 0,
      86_400_000,
      typeof initial === 'number' ? '(at least initialDelayMs) ' : '',
    );
    range(`${base}/backoff/multiplier`, backoff.multiplier, 1, 10);
    range(`${base}/backoff/jitter`, backoff.jitter, 0, 1);
  }

  private checkDeadline(step: StepView): void {
    if (typeof step.deadline !== 'string') return;
    const path = `${step.pointer}/deadline`;
    const duration = parseIsoDuration(step.deadline);
    if (duration === undefined) {
      this.report(
        'deadline-invalid',
        path,
        `"${step.deadline}" is not an ISO 8601 duration such as P30D or PT12H`,
      );
      return;
    }
    const ms = nominalDurationMs(duration);
    if (ms < DEADLINE_MIN_MS || ms > DEADLINE_MAX_MS) {
      this.report(
        'deadline-out-of-range',
        path,
        `${step.deadline} is outside PT1M to P2Y (months count as 30 days, years as 365)`,
      );
    }
  }
}

/**
 * If two guards differ only in one conjunct and its negation, the producers between them run
 * whenever the remaining, common conjuncts hold: those are returned.
 */
function complementaryUnion(
  a: readonly JsonLogicRule[],
  b: readonly JsonLogicRule[],
): JsonLogicRule[] | undefined {
  const aTexts = new Set(a.map(canonicalJson));
  const bTexts = new Set(b.map(canonicalJson));
  const onlyA = a.filter((c) => !bTexts.has(canonicalJson(c)));
  const onlyB = b.filter((c) => !aTexts.has(canonicalJson(c)));
  const [x] = onlyA;
  const [y] = onlyB;
  if (onlyA.length !== 1 || onlyB.length !== 1 || x === undefined || y === undefined) {
    return undefined;
  }
  // Only an exact negation covers every case; `==` to different literals leaves other values.
  return isNegation(x, y) || isNegation(y, x)
    ? a.filter((c) => bTexts.has(canonicalJson(c)))
    : undefined;
}

function isNegation(x: JsonLogicRule, y: JsonLogicRule): boolean {
  return canonicalJson(x) === canonicalJson({ '!': [y] });
}

/** Tarjan's algorithm, iteratively so that a long chain of steps cannot exhaust the stack. */
function stronglyConnected(nodes: readonly number[], next: (n: number) => number[]): number[][] {
  const index = new Map<number, number>();
  const low = new Map<number, number>();
  const onStack = new Set<number>();
  const stack: number[] = [];
  const components: number[][] = [];
  let counter = 0;
  for (const root of nodes) {
    if (index.has(root)) continue;
    const work: { node: number; edge: number }[] = [{ node: root, edge: 0 }];
    index.set(root, counter);
    low.set(root, counter);
    counter++;
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      if (frame === undefined) break;
      const edges = next(frame.node);
      const target = edges[frame.edge];
      if (target !== undefined) {
        frame.edge++;
        if (!index.has(target)) {
          index.set(target, counter);
          low.set(target, counter);
          counter++;
          stack.push(target);
          onStack.add(target);
          work.push({ node: target, edge: 0 });
        } else if (onStack.has(target)) {
          low.set(frame.node, Math.min(low.get(frame.node) ?? 0, index.get(target) ?? 0));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent !== undefined) {
        low.set(parent.node, Math.min(low.get(parent.node) ?? 0, low.get(frame.node) ?? 0));
      }
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: number[] = [];
        for (let n = stack.pop(); n !== undefined; n = stack.pop()) {
          onStack.delete(n);
          component.push(n);
          if (n === frame.node) break;
        }
        components.push(component);
      }
    }
  }
  return components;
}

/** The shortest path from `start` back to itself, as `[start, …, start]`. */
function shortestCycle(start: number, next: (n: number) => number[]): number[] {
  const previous = new Map<number, number>();
  const queue = [start];
  for (let head = 0; head < queue.length; head++) {
    const node = queue[head] ?? start;
    for (const target of [...next(node)].sort((a, b) => a - b)) {
      if (target === start) {
        const path = [start];
        for (
          let n: number | undefined = node;
          n !== undefined && n !== start;
          n = previous.get(n)
        ) {
          path.push(n);
        }
        path.push(start);
        return [path[0] ?? start, ...path.slice(1, -1).reverse(), start];
      }
      if (!previous.has(target) && target !== start) {
        previous.set(target, node);
        queue.push(target);
      }
    }
  }
  return [start, start];
}
