import type { FactValue } from '#agency-contract';
import {
  MOCK_TEMPLATE_PLACEHOLDER,
  nominalDurationMs,
  parseIsoDuration,
  type Agency,
  type AgencyAction,
  type MockBehaviour,
} from '#workflow';
import { randomInt } from 'node:crypto';
import { MOCK_AGENCIES } from './agencies/index.js';
import {
  IncompleteApplication,
  MockMisconfigured,
  agencyReference,
  granted,
  swedishDate,
  type MockAction,
  type MockAgency,
  type MockDecisionContext,
} from './mock-agency.js';
import { organisationNumberFromSequence } from './organisation-number.js';

/**
 * The mock that serves an agency of the catalogue with `adapter: mock`, composed from data: the
 * agency's built-in mock (code in ./agencies, if leo ships one) with each action an administrator
 * configured (`mock` on the action) taking precedence. An action with neither is left out: the
 * runner answers it as a configuration fault (`unknown-action`), which leo retries.
 */
export function composeMock(
  entry: Agency,
  builtIn: MockAgency | undefined,
  check?: ProducedCheck,
): MockAgency {
  const actions: Record<string, MockAction> = { ...builtIn?.actions };
  const officeOf = builtIn?.officeOf?.bind(builtIn);
  for (const action of entry.actions) {
    if (action.mock) actions[action.name] = configuredAction(action, action.mock, check);
  }
  return {
    code: entry.code,
    referencePrefix: builtIn?.referencePrefix ?? referencePrefixOf(entry.code),
    ...(officeOf ? { officeOf } : {}),
    ...(builtIn?.lookups ? { lookups: builtIn.lookups } : {}),
    actions,
  };
}

/** The catalogue's actions of `entry` its composed mock cannot do. */
export function unservedActions(entry: Agency, mock: MockAgency): string[] {
  return entry.actions
    .map((action) => action.name)
    .filter((name) => !Object.hasOwn(mock.actions, name));
}

/** `JV` for jordbruksverket: the first three letters, as agencies' case numbers often begin. */
function referencePrefixOf(code: string): string {
  return (
    code
      .replace(/[^a-z]/g, '')
      .slice(0, 3)
      .toUpperCase() || 'REF'
  );
}

/** Checks a value a configured mock made against its fact's schema: problems, if any. */
export type ProducedCheck = (factKey: string, value: FactValue) => string | undefined;

/**
 * A configured action: checks what it requires, makes what it produces (each value checked
 * against its fact's schema by `check`, so a template that does not fit its fact is a
 * configuration fault and not an invalid answer), refuses at its rate.
 */
export function configuredAction(
  action: AgencyAction,
  behaviour: MockBehaviour,
  check: ProducedCheck = () => undefined,
): MockAction {
  const decidedAfter = behaviour.decidedAfter
    ? parseIsoDuration(behaviour.decidedAfter)
    : undefined;
  return {
    ...(decidedAfter
      ? {
          decidedLater: true,
          decisionDelayMs: nominalDurationMs(decidedAfter),
          checkAtReceipt: true,
        }
      : { decisionDelayMs: 0 }),
    ...(behaviour.latencyMs !== undefined ? { latencyMs: behaviour.latencyMs } : {}),
    ...(behaviour.refusal
      ? {
          refusal: { code: behaviour.refusal.code, reason: behaviour.refusal.reason },
          refusalRate: behaviour.refusal.rate,
        }
      : {}),
    decide: async (context) => {
      const produced = await produceConfigured(action, behaviour, context);
      for (const [key, value] of Object.entries(produced)) {
        const problem = check(key, value);
        if (problem) throw new MockMisconfigured(key, problem);
      }
      return granted(produced);
    },
  };
}

/** What a configured action produces for an application, before any check of the values. */
export async function produceConfigured(
  action: AgencyAction,
  behaviour: MockBehaviour,
  context: MockDecisionContext,
): Promise<Record<string, FactValue>> {
  const { facts } = context;
  const present = (key: string): FactValue => {
    const value = facts[key];
    if (value === undefined || value === null || value === '') throw new IncompleteApplication(key);
    return value;
  };
  for (const key of behaviour.requires ?? []) present(key);
  const produced: Record<string, FactValue> = {};
  for (const key of action.produces) {
    const rule = behaviour.produce?.[key];
    if (!rule) continue;
    if ('value' in rule) produced[key] = rule.value;
    else if ('from' in rule) produced[key] = present(rule.from);
    else if ('template' in rule) {
      produced[key] = fillTemplate(rule.template, context, context.random);
    } else if (rule.generate === 'reference') produced[key] = context.reference;
    else if (rule.generate === 'organisation-number') {
      produced[key] = await context.nextOrganisationNumber();
    } else produced[key] = swedishDate(context.receivedAt);
  }
  return produced;
}

const HEX = '0123456789ABCDEF';

/** A template with its placeholders filled in, random characters from `random`. */
export function fillTemplate(
  template: string,
  context: Pick<MockDecisionContext, 'receivedAt' | 'reference'>,
  random: (below: number) => number = randomInt,
): string {
  const date = swedishDate(context.receivedAt);
  return template.replace(MOCK_TEMPLATE_PLACEHOLDER, (_, name: string) => {
    if (name === 'year') return date.slice(0, 4);
    if (name === 'date') return date;
    if (name === 'reference') return context.reference;
    const [kind, count] = name.split(':');
    const alphabet = kind === 'hex' ? HEX : HEX.slice(0, 10);
    return Array.from({ length: Number(count) }, () => alphabet[random(alphabet.length)]).join('');
  });
}

/**
 * Values a configured action would produce, made up for checking the configuration before it is
 * saved: of every `value`, `generate` and `template` rule (a `from` rule copies a need, which the
 * step's own schema checks), twice, with a template's random characters all the lowest and all
 * the highest they can be, so a pattern that fits only some draws is caught.
 */
export async function sampleProduced(
  entry: Agency,
  action: AgencyAction,
  now: Date = new Date(),
): Promise<Array<Record<string, FactValue>>> {
  const behaviour = action.mock;
  if (!behaviour) return [];
  const mock = composeMock(entry, MOCK_AGENCIES.get(entry.code));
  const rules = Object.entries(behaviour.produce ?? {}).filter(([, rule]) => !('from' in rule));
  const samples: Array<Record<string, FactValue>> = [];
  for (const random of [() => 0, (below: number) => below - 1]) {
    const sampled: Record<string, FactValue> = {};
    const context: MockDecisionContext = {
      facts: {},
      receivedAt: now,
      reference: agencyReference(mock, {}, now, '0123456789'),
      nextOrganisationNumber: () => Promise.resolve(organisationNumberFromSequence(1)),
      random,
    };
    for (const [key, rule] of rules) {
      const only: AgencyAction = { ...action, produces: [key] };
      Object.assign(sampled, await produceConfigured(only, { produce: { [key]: rule } }, context));
    }
    samples.push(sampled);
  }
  return samples;
}

/** Who serves one action of an agency, as its catalogue entry and leo's built-in mocks say. */
export type ActionServing = 'configured-mock' | 'built-in-mock' | 'external-adapter' | 'nobody';

export function actionServing(
  entry: Agency,
  action: AgencyAction,
  family: string = entry.code,
): ActionServing {
  if (entry.adapter !== 'mock') return 'external-adapter';
  if (action.mock) return 'configured-mock';
  const builtIn = MOCK_AGENCIES.get(family);
  return builtIn && Object.hasOwn(builtIn.actions, action.name) ? 'built-in-mock' : 'nobody';
}
