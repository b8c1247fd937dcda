import { ANSWER_LIMITS } from '#agency-contract';
import {
  FACT_KEY_PATTERN,
  MOCK_GENERATORS,
  MOCK_TEMPLATE_PLACEHOLDER,
  nominalDurationMs,
  parseIsoDuration,
  type AgencyAction,
  type JsonValue,
  type MockBehaviour,
  type MockGenerator,
  type MockProduce,
} from '#workflow';
import { escapePointer, isRecord, readObject, readStringList, type Problems } from './reading.js';

/**
 * Reads an action's `mock` block: how leo's mock of the agency answers the action when an
 * administrator configures it as data (no code). Limits keep a configured mock an agency could
 * plausibly be: at most a minute to answer, a decision within 30 days.
 */

export const MOCK_LIMITS = {
  latencyMsMax: 60_000,
  decidedAfterMinMs: 1_000,
  decidedAfterMaxMs: 30 * 24 * 3_600_000,
} as const;

const FACT_KEY = {
  regex: FACT_KEY_PATTERN,
  describe: 'a fact key in dotted lower camel case (person.address)',
};

export function readMockBehaviour(value: unknown, at: Problems): MockBehaviour | undefined {
  const before = at.count();
  const object = readObject(value, at, '', [
    'requires',
    'produce',
    'latencyMs',
    'decidedAfter',
    'refusal',
  ]);
  if (!object) return undefined;
  const behaviour: MockBehaviour = {};

  if (object.requires !== undefined) {
    const requires = readStringList(object, 'requires', at, FACT_KEY);
    if (requires) behaviour.requires = requires;
  }
  if (object.produce !== undefined) {
    if (!isRecord(object.produce)) at.add('/produce', 'must be an object by fact key');
    else {
      const produce: Record<string, MockProduce> = {};
      for (const [key, rule] of Object.entries(object.produce)) {
        const path = `/produce/${escapePointer(key)}`;
        if (!FACT_KEY.regex.test(key)) at.add(path, `must be keyed by ${FACT_KEY.describe}`);
        const read = readProduce(rule, at.under(path));
        if (read) produce[key] = read;
      }
      behaviour.produce = produce;
    }
  }
  if (object.latencyMs !== undefined) {
    const ms = object.latencyMs;
    if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 0 || ms > MOCK_LIMITS.latencyMsMax)
      at.add(
        '/latencyMs',
        `must be a whole number of milliseconds, 0 to ${MOCK_LIMITS.latencyMsMax}`,
      );
    else behaviour.latencyMs = ms;
  }
  if (object.decidedAfter !== undefined) {
    const text = object.decidedAfter;
    const duration = typeof text === 'string' ? parseIsoDuration(text) : undefined;
    const ms = duration ? nominalDurationMs(duration) : undefined;
    if (
      typeof text !== 'string' ||
      ms === undefined ||
      ms < MOCK_LIMITS.decidedAfterMinMs ||
      ms > MOCK_LIMITS.decidedAfterMaxMs
    ) {
      at.add('/decidedAfter', 'must be an ISO 8601 duration from PT1S to P30D, such as PT30S');
    } else behaviour.decidedAfter = text;
  }
  if (object.refusal !== undefined) {
    const refusal = readRefusal(object.refusal, at.under('/refusal'));
    if (refusal) behaviour.refusal = refusal;
  }
  return at.count() === before ? behaviour : undefined;
}

const ONE_OF =
  'must be one of { value: … }, { from: <fact key> }, { generate: … } or { template: … }';

function readProduce(value: unknown, at: Problems): MockProduce | undefined {
  if (!isRecord(value) || Object.keys(value).length !== 1) {
    at.add('', ONE_OF);
    return undefined;
  }
  if ('value' in value) {
    if (!isJson(value.value)) {
      at.add('/value', 'must be a JSON value');
      return undefined;
    }
    return { value: value.value };
  }
  if ('from' in value) {
    if (typeof value.from !== 'string' || !FACT_KEY.regex.test(value.from)) {
      at.add('/from', `must be ${FACT_KEY.describe}`);
      return undefined;
    }
    return { from: value.from };
  }
  if ('generate' in value) {
    if (!MOCK_GENERATORS.includes(value.generate as MockGenerator)) {
      at.add('/generate', `must be one of ${MOCK_GENERATORS.join(', ')}`);
      return undefined;
    }
    return { generate: value.generate as MockGenerator };
  }
  if ('template' in value) {
    const template = value.template;
    const problem = templateProblem(template);
    if (problem) {
      at.add('/template', problem);
      return undefined;
    }
    return { template: template as string };
  }
  at.add('', ONE_OF);
  return undefined;
}

/** What is wrong with a template rule's text, if anything. */
function templateProblem(template: unknown): string | undefined {
  if (typeof template !== 'string' || template.length === 0 || template.length > 200) {
    return 'must be a text of 1 to 200 characters';
  }
  const rest = template.replace(MOCK_TEMPLATE_PLACEHOLDER, '');
  if (/[{}]/.test(rest)) {
    return 'may hold only the placeholders {year}, {date}, {reference}, {digits:N} and {hex:N}';
  }
  for (const [, count] of template.matchAll(/\{(?:digits|hex):(\d+)\}/g)) {
    if (Number(count) < 1 || Number(count) > 20)
      return 'N of {digits:N} and {hex:N} must be 1 to 20';
  }
  return undefined;
}

function readRefusal(value: unknown, at: Problems): MockBehaviour['refusal'] {
  const before = at.count();
  const object = readObject(value, at, '', ['rate', 'code', 'reason']);
  if (!object) return undefined;
  const { rate, code, reason } = object;
  if (typeof rate !== 'number' || !(rate >= 0 && rate <= 1)) at.add('/rate', 'must be 0 to 1');
  if (typeof code !== 'string' || !ANSWER_LIMITS.codePattern.test(code))
    at.add('/code', 'must be a kebab-case code of 2 to 64 characters');
  if (
    typeof reason !== 'string' ||
    reason.trim() === '' ||
    reason.length > ANSWER_LIMITS.reasonMaxLength
  )
    at.add('/reason', `must be a text of 1 to ${ANSWER_LIMITS.reasonMaxLength} characters`);
  if (at.count() !== before) return undefined;
  return { rate: rate as number, code: code as string, reason: reason as string };
}

function isJson(value: unknown, depth = 0): value is JsonValue {
  if (depth > 32) return false;
  if (value === null || ['string', 'boolean'].includes(typeof value)) return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every((item) => isJson(item, depth + 1));
  if (isRecord(value)) return Object.values(value).every((item) => isJson(item, depth + 1));
  return false;
}

/**
 * What is wrong with a configured mock next to its action (paths under the action): it must
 * produce exactly the action's facts, each by one rule.
 */
export function mockProblems(action: AgencyAction): Array<{ path: string; message: string }> {
  const mock = action.mock;
  if (!mock) return [];
  const problems: Array<{ path: string; message: string }> = [];
  const produce = mock.produce ?? {};
  for (const key of Object.keys(produce)) {
    if (!action.produces.includes(key)) {
      problems.push({
        path: `/mock/produce/${key}`,
        message: `${key} is not among the facts ${action.name} produces`,
      });
    }
  }
  action.produces.forEach((key) => {
    if (!Object.hasOwn(produce, key)) {
      problems.push({
        path: '/mock/produce',
        message: `says nothing of ${key}, which ${action.name} produces (give a value, from, generate or template)`,
      });
    }
  });
  return problems;
}
