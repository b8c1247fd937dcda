import type { FactValue, StepOutcome } from '#agency-contract';

/**
 * How a mock agency is written: per action, the decision on an application's merits, and
 * whether that decision comes later (`pending` first) and may be a refusal. The machinery
 * around it (ledger, idempotency, latency, failures, delayed decisions) is the runner's
 * (mock-agency-runner.ts), the same for every agency.
 */

export type Facts = Readonly<Record<string, FactValue>>;

/** An agency's decision: granted with the facts it produces, or refused. */
export type MockDecision =
  { granted: Record<string, FactValue> } | { refused: { code: string; reason: string } };

export interface MockDecisionContext {
  /** The facts of the application (exactly what the step's job carried). */
  facts: Facts;
  /** When the application was first received. */
  receivedAt: Date;
  /** Bolagsverket's register: a new organisation number, never given before. */
  nextOrganisationNumber: () => Promise<string>;
  /** The agency's reference (case number) of the application. */
  reference: string;
  /** Random characters of a template rule: a whole number below `below` (default: crypto's). */
  random?: (below: number) => number;
}

export interface MockAction {
  /**
   * Decided after review: answered `pending` with a reference, and decided MOCK_DECISION_DELAY_MS
   * later (at once, without `pending`, when that is 0).
   */
  decidedLater?: boolean;
  /** The refusal a decision may be, at MOCK_REJECTION_RATE; absent: never refused at random. */
  refusal?: { code: string; reason: string };
  /** This action's own refusal rate, instead of MOCK_REJECTION_RATE (a configured mock). */
  refusalRate?: number;
  /** This action's own time to answer, instead of MOCK_AGENCY_LATENCY_MS (a configured mock). */
  latencyMs?: number;
  /** This action's own delay to a later decision, instead of MOCK_DECISION_DELAY_MS. */
  decisionDelayMs?: number;
  /** Decided later, but tried at receipt too, so a misconfiguration shows at once. */
  checkAtReceipt?: boolean;
  /** The decision on the merits: may throw IncompleteApplication. */
  decide(context: MockDecisionContext): MockDecision | Promise<MockDecision>;
}

/** What a look-up in an agency's register is answered from. */
export interface MockLookupContext {
  /** The person looked up (the identity number the job carried). */
  personalNumber: string;
  today: Date;
  /** The new address of the person's latest granted change of address, if any (Skatteverket). */
  registeredMove(): Promise<FactValue | undefined>;
}

/** Reads one fact of the agency's register; undefined when the register has no value. */
export type MockRegisterRead = (
  context: MockLookupContext,
) => FactValue | undefined | Promise<FactValue | undefined>;

export interface MockAgency {
  code: string;
  /** The facts this agency is the authoritative source of (agencies.yaml `lookups`). */
  lookups?: Readonly<Record<string, MockRegisterRead>>;
  /** Start of the agency's references (case numbers), e.g. `SKV`. */
  referencePrefix: string;
  /**
   * Which office handles an application, written into its reference after the prefix: the
   * municipality routes every job to one of 290 municipalities by a municipality code.
   */
  officeOf?(facts: Facts): string | undefined;
  actions: Readonly<Record<string, MockAction>>;
}

/** A fact the decision needs is missing or not valid: refused as incomplete. */
export class IncompleteApplication extends Error {
  constructor(readonly factKey: string) {
    super(`${factKey} is missing or not valid`);
    this.name = 'IncompleteApplication';
  }
}

/**
 * A configured mock made a value its fact's schema refuses (a template or generator that does
 * not fit the fact): leo's configuration is at fault, not the application.
 */
export class MockMisconfigured extends Error {
  constructor(
    readonly factKey: string,
    problem: string,
  ) {
    super(`the mock made a value of ${factKey} that its schema refuses: ${problem}`);
    this.name = 'MockMisconfigured';
  }
}

export const granted = (produced: Record<string, FactValue> = {}): MockDecision => ({
  granted: produced,
});

export const refused = (code: string, reason: string): MockDecision => ({
  refused: { code, reason },
});

/** The outcome that answers a decision. */
export function decisionOutcome(decision: MockDecision, reference: string): StepOutcome {
  return 'granted' in decision
    ? { outcome: 'completed', produced: decision.granted, reference }
    : { outcome: 'rejected', ...decision.refused, reference };
}

/** A string fact the decision cannot do without; `check` narrows what is valid. */
export function requireString(
  facts: Facts,
  key: string,
  check: (value: string) => boolean = () => true,
): string {
  const value = facts[key];
  if (typeof value !== 'string' || !check(value)) throw new IncompleteApplication(key);
  return value;
}

/** An object fact (an address, a name) the decision cannot do without. */
export function requireObject(facts: Facts, key: string): Readonly<Record<string, FactValue>> {
  const value = facts[key];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new IncompleteApplication(key);
  }
  return value;
}

const STOCKHOLM_DATE = new Intl.DateTimeFormat('en-CA', {
  timeZone: 'Europe/Stockholm',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
});

/** The calendar date (YYYY-MM-DD) in Sweden at `at`. */
export function swedishDate(at: Date): string {
  return STOCKHOLM_DATE.format(at);
}

/** An agency's case number: `SKV-2025-…`, or with the office that handles it, `KOM-0180-2025-…`. */
export function agencyReference(
  agency: Pick<MockAgency, 'referencePrefix' | 'officeOf'>,
  facts: Facts,
  now: Date,
  serial: string,
): string {
  const office = agency.officeOf?.(facts);
  const year = swedishDate(now).slice(0, 4);
  return [agency.referencePrefix, office, year, serial].filter(Boolean).join('-');
}
