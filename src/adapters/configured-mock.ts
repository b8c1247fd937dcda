import type { FactValue } from '#agency-contract';
import {
  nominalDurationMs,
  parseIsoDuration,
  type Agency,
  type AgencyAction,
  type MockBehaviour,
} from '#workflow';
import {
  IncompleteApplication,
  granted,
  swedishDate,
  type MockAction,
  type MockAgency,
  type MockDecisionContext,
} from './mock-agency.js';

/**
 * The mock that serves an agency of the catalogue with `adapter: mock`, composed from data: the
 * agency's built-in mock (code in ./agencies, if leo ships one) with each action an administrator
 * configured (`mock` on the action) taking precedence. An action with neither is left out: the
 * runner answers it as a configuration fault (`unknown-action`), which leo retries.
 */
export function composeMock(entry: Agency, builtIn: MockAgency | undefined): MockAgency {
  const actions: Record<string, MockAction> = { ...builtIn?.actions };
  const officeOf = builtIn?.officeOf?.bind(builtIn);
  for (const action of entry.actions) {
    if (action.mock) actions[action.name] = configuredAction(action, action.mock);
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

/** A configured action: checks what it requires, makes what it produces, refuses at its rate. */
export function configuredAction(action: AgencyAction, behaviour: MockBehaviour): MockAction {
  const decidedAfter = behaviour.decidedAfter
    ? parseIsoDuration(behaviour.decidedAfter)
    : undefined;
  return {
    ...(decidedAfter
      ? { decidedLater: true, decisionDelayMs: nominalDurationMs(decidedAfter) }
      : { decisionDelayMs: 0 }),
    ...(behaviour.latencyMs !== undefined ? { latencyMs: behaviour.latencyMs } : {}),
    ...(behaviour.refusal
      ? {
          refusal: { code: behaviour.refusal.code, reason: behaviour.refusal.reason },
          refusalRate: behaviour.refusal.rate,
        }
      : {}),
    decide: (context) => decideConfigured(action, behaviour, context),
  };
}

async function decideConfigured(
  action: AgencyAction,
  behaviour: MockBehaviour,
  context: MockDecisionContext,
) {
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
    else if (rule.generate === 'reference') produced[key] = context.reference;
    else if (rule.generate === 'organisation-number') {
      produced[key] = await context.nextOrganisationNumber();
    } else produced[key] = swedishDate(context.receivedAt);
  }
  return granted(produced);
}
