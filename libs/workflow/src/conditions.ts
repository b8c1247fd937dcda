import jsonLogic from 'json-logic-js';
import { canonicalJson } from './canonical.js';
import { escapePointerToken } from './diagnostics.js';
import type { JsonLogicRule } from './types.js';

/**
 * The JSON Logic operators a `when` may use: comparisons, logic, arithmetic and string tests.
 * Left out on purpose: `method` (calls methods on values), `log`, and the array operators (`map`,
 * `filter`, `reduce`, `all`, `some`, `none`, `merge`), whose inner rules read each item rather
 * than facts and so defeat the static checks.
 */
export const WHEN_OPERATORS: ReadonlySet<string> = new Set([
  '==',
  '===',
  '!=',
  '!==',
  '>',
  '>=',
  '<',
  '<=',
  '!',
  '!!',
  'and',
  'or',
  'if',
  '?:',
  'in',
  'cat',
  'substr',
  '+',
  '-',
  '*',
  '/',
  '%',
  'min',
  'max',
  'var',
  'missing',
  'missing_some',
]);

// Deeper rules are refused rather than walked, so a hostile definition cannot exhaust the stack.
const MAX_DEPTH = 64;

export interface RuleProblem {
  /** JSON pointer relative to the rule. */
  pointer: string;
  message: string;
}

export interface RuleRead {
  /** JSON pointer relative to the rule, of the literal path string. */
  pointer: string;
  /** The data path read, e.g. `person.address.postalCode`. */
  path: string;
}

export interface RuleAnalysis {
  problems: RuleProblem[];
  reads: RuleRead[];
}

type RuleObject = Record<string, unknown>;

function isObject(value: unknown): value is RuleObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function listOf(value: unknown): unknown[] | undefined {
  return Array.isArray(value) ? (value as unknown[]) : undefined;
}

/** JSON Logic reads a non-array argument list as a list of one. */
function argumentList(args: unknown): unknown[] {
  return Array.isArray(args) ? args : [args];
}

/** Every problem and every fact read in a rule, without evaluating it. */
/** The fact keys (of `factKeys`) a condition reads: `person.address.postalCode` reads `person.address`. */
export function conditionFacts(rule: unknown, factKeys: ReadonlySet<string>): string[] {
  const keys = analyseRule(rule).reads.map((r) => longestPrefix(r.path, factKeys) ?? r.path);
  return [...new Set(keys)].sort();
}

/**
 * Analyses of rule objects already seen. Rules are immutable JSON (a published definition never
 * changes), and planning a case evaluates the same few conditions many times.
 */
const analyses = new WeakMap<object, RuleAnalysis>();

export function analyseRule(rule: unknown): RuleAnalysis {
  const cacheable = typeof rule === 'object' && rule !== null;
  const cached = cacheable ? analyses.get(rule) : undefined;
  if (cached) return cached;
  const analysis: RuleAnalysis = { problems: [], reads: [] };
  walk(rule, '', 0, analysis);
  if (cacheable) analyses.set(rule, analysis);
  return analysis;
}

function walk(rule: unknown, pointer: string, depth: number, out: RuleAnalysis): void {
  if (depth > MAX_DEPTH) {
    out.problems.push({ pointer, message: `is nested more than ${MAX_DEPTH} levels deep` });
    return;
  }
  if (Array.isArray(rule)) {
    rule.forEach((item: unknown, i) => {
      walk(item, `${pointer}/${i}`, depth + 1, out);
    });
    return;
  }
  if (!isObject(rule)) return;
  const keys = Object.keys(rule);
  const operator = keys[0];
  if (keys.length !== 1 || operator === undefined) {
    out.problems.push({
      pointer,
      message: `an operation must be an object with exactly one key, its operator; this one has ${keys.length === 0 ? 'none' : keys.map((k) => JSON.stringify(k)).join(', ')}`,
    });
    return;
  }
  const args = rule[operator];
  const at = `${pointer}/${escapePointerToken(operator)}`;
  if (!WHEN_OPERATORS.has(operator)) {
    out.problems.push({
      pointer: at,
      message: `unknown or disallowed operator ${JSON.stringify(operator)}`,
    });
    return;
  }
  const list = argumentList(args);
  const argPointer = (i: number): string => (Array.isArray(args) ? `${at}/${i}` : at);
  switch (operator) {
    case 'var': {
      readLiteral(list[0], argPointer(0), out, 'var');
      if (list.length > 1) walk(list[1], argPointer(1), depth + 1, out);
      return;
    }
    case 'missing': {
      // `{"missing": [["a", "b"]]}` is also accepted by JSON Logic: a single list of paths.
      const nested = list.length === 1 && Array.isArray(list[0]);
      const paths: unknown[] = nested ? (list[0] as unknown[]) : list;
      if (paths.length === 0) {
        out.problems.push({ pointer: at, message: '"missing" needs at least one path' });
      }
      paths.forEach((path, i) => {
        readLiteral(path, nested ? `${argPointer(0)}/${i}` : argPointer(i), out, 'missing');
      });
      return;
    }
    case 'missing_some': {
      const paths = list[1];
      if (!Array.isArray(args) || list.length !== 2 || !Array.isArray(paths)) {
        out.problems.push({
          pointer: at,
          message: '"missing_some" takes [minimum, [literal paths]]',
        });
        return;
      }
      walk(list[0], argPointer(0), depth + 1, out);
      paths.forEach((path: unknown, i) => {
        readLiteral(path, `${argPointer(1)}/${i}`, out, 'missing_some');
      });
      return;
    }
    default:
      list.forEach((arg, i) => {
        walk(arg, argPointer(i), depth + 1, out);
      });
  }
}

function readLiteral(path: unknown, pointer: string, out: RuleAnalysis, operator: string): void {
  if (typeof path === 'string' && path !== '') {
    out.reads.push({ pointer, path });
  } else {
    // A computed or empty path could read any fact (or all of them): nothing could be checked.
    out.problems.push({
      pointer,
      message: `"${operator}" must name a fact by a non-empty literal string, not ${path === undefined ? 'nothing' : JSON.stringify(path)}`,
    });
  }
}

// ---- comparing conditions ---------------------------------------------------------------

/**
 * A rule rewritten so that equal meaning more often means equal JSON: arguments always a list,
 * `{"var": ["x"]}` as `{"var": "x"}`. Only for rules without problems.
 */
export function normaliseRule(rule: unknown): JsonLogicRule {
  if (Array.isArray(rule)) return rule.map(normaliseRule);
  if (!isObject(rule)) return rule as JsonLogicRule;
  const [operator, args] = Object.entries(rule)[0] ?? ['', null];
  const list = argumentList(args);
  if (operator === 'var') {
    const path = list[0] as string;
    return list.length > 1 ? { var: [path, normaliseRule(list[1])] } : { var: path };
  }
  if (operator === '!' || operator === '!!')
    return { [operator]: [normaliseRule(list[0] ?? null)] };
  return { [operator]: list.map(normaliseRule) };
}

function unary(rule: JsonLogicRule, operator: '!' | '!!'): JsonLogicRule | undefined {
  if (!isObject(rule)) return undefined;
  const args = listOf(rule[operator]);
  return args === undefined ? undefined : (args[0] as JsonLogicRule | undefined);
}

/** The negation of a normalised rule, for truthiness: `!!x` and `x` negate alike. */
export function negateRule(rule: JsonLogicRule): JsonLogicRule {
  const inner = unary(rule, '!');
  if (inner !== undefined) return inner;
  return { '!': [unary(rule, '!!') ?? rule] };
}

/**
 * The conjuncts of a normalised rule read as a truth value: nested `and` flattened, double
 * negation removed, `!(a or b)` as `!a and !b`, literal `true` dropped.
 */
export function conjunctsOf(rule: JsonLogicRule): JsonLogicRule[] {
  if (rule === true) return [];
  if (isObject(rule)) {
    const and = listOf(rule.and) as JsonLogicRule[] | undefined;
    if (and !== undefined) {
      // JSON Logic's `and` of nothing is undefined, which is falsy.
      return and.length === 0 ? [false] : and.flatMap(conjunctsOf);
    }
    const truthy = unary(rule, '!!');
    if (truthy !== undefined) return conjunctsOf(truthy);
    const negated = unary(rule, '!');
    if (negated !== undefined) {
      const twice = unary(negated, '!');
      if (twice !== undefined) return conjunctsOf(twice);
      const or = isObject(negated)
        ? (listOf(negated.or) as JsonLogicRule[] | undefined)
        : undefined;
      if (or !== undefined) {
        return or.flatMap((r) => conjunctsOf(negateRule(r)));
      }
      const truthyInner = unary(negated, '!!');
      if (truthyInner !== undefined) return conjunctsOf({ '!': [truthyInner] });
    }
  }
  return [rule];
}

/** Whether a rule reads no data, so that its value is the same for every case. */
function isConstant(rule: JsonLogicRule): boolean {
  if (Array.isArray(rule)) return rule.every(isConstant);
  if (!isObject(rule)) return true;
  const [operator, args] = Object.entries(rule)[0] ?? ['', null];
  if (operator === 'var' || operator === 'missing' || operator === 'missing_some') return false;
  return argumentList(args).every((arg) => isConstant(arg as JsonLogicRule));
}

/**
 * Whether conjuncts are false whatever the facts: a conjunct that reads no data and evaluates
 * falsy (`false`, `0`, `""`, `null`, `{"==": [1, 2]}`), or a conjunct together with its negation.
 */
export function isStaticallyFalse(conjuncts: readonly JsonLogicRule[]): boolean {
  const texts = new Set(conjuncts.map(canonicalJson));
  return conjuncts.some((c) => {
    if (texts.has(canonicalJson(negateRule(c)))) return true;
    if (!isConstant(c)) return false;
    try {
      return !jsonLogic.truthy(jsonLogic.apply(c as jsonLogic.RulesLogic));
    } catch {
      return false;
    }
  });
}

type Literal = string | number | boolean | null;

function varEquality(
  rule: JsonLogicRule,
): { strict: boolean; path: string; value: Literal } | undefined {
  if (!isObject(rule)) return undefined;
  const [operator, args] = Object.entries(rule)[0] ?? ['', null];
  if ((operator !== '==' && operator !== '===') || !Array.isArray(args) || args.length !== 2) {
    return undefined;
  }
  const strict = operator === '===';
  for (const [v, literal] of [
    [args[0], args[1]],
    [args[1], args[0]],
  ]) {
    if (isObject(v) && typeof v.var === 'string' && isLiteral(literal)) {
      return { strict, path: v.var, value: literal };
    }
  }
  return undefined;
}

function isLiteral(value: unknown): value is Literal {
  return value === null || ['string', 'number', 'boolean'].includes(typeof value);
}

/**
 * Whether two conjuncts can never both be true: one negates the other, or both compare the same
 * var to literals no value equals at once. For loose `==` that takes care: `x == "1"` and
 * `x == 1` both hold for x = 1, as do `x == ""` and `x == 0`.
 */
export function conjunctsExclude(a: JsonLogicRule, b: JsonLogicRule): boolean {
  if (canonicalJson(a) === canonicalJson(negateRule(b))) return true;
  const x = varEquality(a);
  const y = varEquality(b);
  if (x === undefined || y === undefined || x.path !== y.path) return false;
  if (x.strict && y.strict) return x.value !== y.value;
  // A strict side pins the value exactly; the loose side then holds iff the literals are loosely
  // equal.
  if (x.strict || y.strict) return !(x.value == y.value);
  if (x.value === null || y.value === null) return x.value !== y.value;
  // Loose equality to a non-null primitive holds for a value that equals it as a number (when it
  // has one) or, for a string, as that string; two literals share a satisfying value only if
  // they are equal or have the same numeric value.
  return x.value !== y.value && Number(x.value) !== Number(y.value);
}

/** Whether two sets of conjuncts can never both hold (some pair of conjuncts excludes). */
export function conditionsExclude(
  a: readonly JsonLogicRule[],
  b: readonly JsonLogicRule[],
): boolean {
  return a.some((x) => b.some((y) => conjunctsExclude(x, y)));
}

// ---- evaluation -------------------------------------------------------------------------

type Outcome =
  { kind: 'value'; value: unknown } | { kind: 'truth'; truth: boolean } | { kind: 'unknown' };
const UNKNOWN: Outcome = { kind: 'unknown' };

function truthOf(outcome: Outcome): boolean | undefined {
  if (outcome.kind === 'value') return jsonLogic.truthy(outcome.value);
  return outcome.kind === 'truth' ? outcome.truth : undefined;
}

interface EvaluationContext {
  data: unknown;
  isKnown(path: string): boolean;
}

/**
 * Evaluates a rule over facts, where some facts may not be known yet, in three-valued logic: the
 * result is 'unknown' only if it depends on a fact not known (`false and x` is false whatever x).
 * `known` maps fact keys to values; a `var` path reads the longest known key it starts with, so
 * `person.address.postalCode` reads into `person.address`. A value of undefined counts as unknown.
 * Throws on a rule that `validate` would refuse (`when-invalid`).
 */
export function evaluateCondition(
  rule: JsonLogicRule,
  known: Readonly<Record<string, unknown>>,
): boolean | 'unknown' {
  const keys = knownKeys(known);
  return evaluateWith(rule, known, (path) => longestPrefix(path, keys) !== undefined);
}

export function knownKeys(known: Readonly<Record<string, unknown>>): Set<string> {
  return new Set(Object.keys(known).filter((key) => known[key] !== undefined));
}

/** The longest of `keys` that is `path` or a dot-prefix of it. */
export function longestPrefix(path: string, keys: ReadonlySet<string>): string | undefined {
  let candidate = path;
  for (;;) {
    if (keys.has(candidate)) return candidate;
    const dot = candidate.lastIndexOf('.');
    if (dot < 0) return undefined;
    candidate = candidate.slice(0, dot);
  }
}

export function evaluateWith(
  rule: JsonLogicRule,
  known: Readonly<Record<string, unknown>>,
  isKnown: (path: string) => boolean,
): boolean | 'unknown' {
  return evaluateNested(rule, nest(known), isKnown);
}

/**
 * `evaluateWith` over facts already nested by `nestFacts`: for evaluating many conditions over
 * the same facts (planning a case) without nesting them for each.
 */
export function evaluateNested(
  rule: JsonLogicRule,
  data: Readonly<Record<string, unknown>>,
  isKnown: (path: string) => boolean,
): boolean | 'unknown' {
  const { problems } = analyseRule(rule);
  if (problems.length > 0) {
    const first = problems[0];
    throw new Error(`invalid condition at ${first?.pointer ?? ''}: ${first?.message ?? ''}`);
  }
  const context: EvaluationContext = { data, isKnown };
  return truthOf(evaluate(rule, context)) ?? 'unknown';
}

/** Facts by dotted key as the nested object JSON Logic's `var` reads. */
export function nestFacts(known: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return nest(known);
}

function readsUnknown(rule: unknown, context: EvaluationContext): boolean {
  return analyseRule(rule).reads.some((read) => !context.isKnown(read.path));
}

function evaluate(rule: unknown, context: EvaluationContext): Outcome {
  if (!readsUnknown(rule, context)) {
    return { kind: 'value', value: jsonLogic.apply(rule as jsonLogic.RulesLogic, context.data) };
  }
  if (!isObject(rule)) return UNKNOWN;
  const [operator, args] = Object.entries(rule)[0] ?? ['', null];
  const list = argumentList(args);
  switch (operator) {
    case 'and':
    case 'or': {
      // Short-circuits on a decided operand even when an earlier one is unknown.
      const decisive = operator === 'or';
      const decided = list.some((arg) => truthOf(evaluate(arg, context)) === decisive);
      return decided ? { kind: 'truth', truth: decisive } : UNKNOWN;
    }
    case '!':
    case '!!': {
      const truth = truthOf(evaluate(list[0], context));
      if (truth === undefined) return UNKNOWN;
      return { kind: 'truth', truth: operator === '!' ? !truth : truth };
    }
    case 'if':
    case '?:': {
      let i = 0;
      for (; i < list.length - 1; i += 2) {
        const truth = truthOf(evaluate(list[i], context));
        if (truth === undefined) return UNKNOWN;
        if (truth) return evaluate(list[i + 1], context);
      }
      return i === list.length - 1 ? evaluate(list[i], context) : { kind: 'value', value: null };
    }
    default:
      return UNKNOWN;
  }
}

/**
 * Fact keys are dotted paths and JSON Logic reads `var` paths through nested objects, so
 * `{"person.address": {...}}` becomes `{person: {address: {...}}}`. Objects have no prototype so
 * that keys such as `__proto__` stay plain data.
 */
function nest(known: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const root: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  // Shorter keys first, so that a fact nested inside another (`a.b` and `a.b.c`) is merged into
  // a copy of the outer value rather than being overwritten by it.
  const keys = [...knownKeys(known)].sort((a, b) => a.length - b.length || (a < b ? -1 : 1));
  for (const key of keys) {
    const segments = key.split('.');
    const last = segments.pop() ?? key;
    let node: Record<string, unknown> | undefined = root;
    for (const segment of segments) {
      const child: unknown = node[segment];
      if (child === undefined) {
        const created = Object.create(null) as Record<string, unknown>;
        node[segment] = created;
        node = created;
      } else if (isObject(child)) {
        const copy = Object.assign(Object.create(null) as Record<string, unknown>, child);
        node[segment] = copy;
        node = copy;
      } else {
        node = undefined;
        break;
      }
    }
    if (node !== undefined) node[last] = known[key];
  }
  return root;
}

// ---- rendering --------------------------------------------------------------------------

const INFIX = new Set([
  '==',
  '===',
  '!=',
  '!==',
  '>',
  '>=',
  '<',
  '<=',
  'in',
  '+',
  '-',
  '*',
  '/',
  '%',
]);

/**
 * A short human rendering of a rule for diagrams and messages, e.g.
 * `business.expectedTurnover > 120000` or `business.willEmploy and not business.servesFood`.
 */
export function describeRule(rule: unknown): string {
  return describe(rule, 0);
}

function describe(rule: unknown, depth: number): string {
  if (depth > MAX_DEPTH) return '…';
  if (Array.isArray(rule)) return `[${rule.map((r) => describe(r, depth + 1)).join(', ')}]`;
  if (!isObject(rule)) return rule === undefined ? 'null' : JSON.stringify(rule);
  const keys = Object.keys(rule);
  const operator = keys[0];
  if (keys.length !== 1 || operator === undefined) return canonicalJson(rule);
  const args = argumentList(rule[operator]);
  const operand = (r: unknown): string => {
    const text = describe(r, depth + 1);
    return isCompound(r) ? `(${text})` : text;
  };
  switch (operator) {
    case 'var':
      return args.length > 1
        ? `${String(args[0])} ?? ${operand(args[1])}`
        : typeof args[0] === 'string'
          ? args[0]
          : `var(${describe(args[0], depth + 1)})`;
    case 'and':
    case 'or':
      // `not` binds tighter than and/or, so `a and not b` needs no parentheses.
      return args
        .map((a) => (isObject(a) && Object.hasOwn(a, '!') ? describe(a, depth + 1) : operand(a)))
        .join(` ${operator} `);
    case '!':
      return `not ${operand(args[0])}`;
    case '!!':
      return describe(args[0], depth + 1);
    case 'if':
    case '?:': {
      const parts: string[] = [];
      let i = 0;
      for (; i < args.length - 1; i += 2) {
        parts.push(
          `${i === 0 ? 'if' : 'else if'} ${operand(args[i])} then ${operand(args[i + 1])}`,
        );
      }
      if (i === args.length - 1) parts.push(`else ${operand(args[i])}`);
      return parts.join(' ');
    }
    default:
      if (INFIX.has(operator) && args.length >= 2) return args.map(operand).join(` ${operator} `);
      if ((operator === '-' || operator === '+') && args.length === 1) {
        return `${operator}${operand(args[0])}`;
      }
      return `${operator}(${args.map((a) => describe(a, depth + 1)).join(', ')})`;
  }
}

/** Whether a rule renders as an infix or prefix expression that needs parentheses as an operand. */
function isCompound(rule: unknown): boolean {
  if (!isObject(rule)) return false;
  const keys = Object.keys(rule);
  const operator = keys[0];
  if (keys.length !== 1 || operator === undefined) return false;
  const args = argumentList(rule[operator]);
  return (
    ['and', 'or', '!', 'if', '?:'].includes(operator) ||
    (INFIX.has(operator) && args.length >= 2) ||
    (operator === '!!' && isCompound(args[0]))
  );
}
