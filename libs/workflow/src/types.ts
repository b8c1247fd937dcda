/**
 * The life-event definition language. Wire names (keys, codes, field names) are permanent.
 *
 * A definition is authored as YAML or JSON (see docs/schemas/life-event.schema.json), validated
 * against a catalogue of fact types and agencies, and once published never changes: a case runs
 * the version it began on.
 */

/** Texts shown to people, in Swedish and English. */
export interface LocalisedText {
  sv: string;
  en: string;
}

/** A JSON Logic rule (https://jsonlogic.com) over facts, e.g. {">": [{"var": "business.expectedTurnover"}, 120000]}. */
export type JsonLogicRule =
  boolean | number | string | null | JsonLogicRule[] | { [operator: string]: JsonLogicRule };

export const STEP_KINDS = ['automatic', 'decision', 'citizen-task'] as const;
/**
 * automatic: the agency answers within its time limit; decision: the agency answers later (a
 * pending result, then a decision); citizen-task: the citizen must act (sign, pay, upload).
 */
export type StepKind = (typeof STEP_KINDS)[number];

export const FAILURE_POLICIES = ['action-required', 'fail-case'] as const;
/** What a failed step (rejected, or out of attempts) does to its case. */
export type FailurePolicy = (typeof FAILURE_POLICIES)[number];

export interface BackoffPolicy {
  /** Always exponential: delay = min(maxDelayMs, initialDelayMs * multiplier^(attempt-1)), then jittered. */
  type: 'exponential';
  initialDelayMs: number;
  maxDelayMs: number;
  multiplier: number;
  /** Fraction of the delay randomised away (0 = none, 1 = full jitter). */
  jitter: number;
}

export interface RetryPolicy {
  /** Total attempts including the first (1 = no retry). */
  attempts: number;
  backoff: BackoffPolicy;
}

export interface StepDefinition {
  /** Unique within the definition; kebab-case. */
  id: string;
  /** An agency code from the catalogue, e.g. `bolagsverket`. */
  agency: string;
  /** One of that agency's actions, e.g. `register-sole-trader`. */
  action: string;
  kind: StepKind;
  title?: LocalisedText;
  /** Fact keys the step consumes: exactly what its job will carry to the agency. */
  needs: string[];
  /** Fact keys the step yields: the only facts its result may set. */
  produces: string[];
  /** Run only when this JSON Logic rule over facts is truthy; otherwise the step is skipped. */
  when?: JsonLogicRule;
  /** Step ids this step runs after, besides those whose produced facts it needs. */
  after?: string[];
  /** Defaults: 5 attempts, 1 s initial delay doubling to at most 5 min, 20 % jitter. */
  retry?: RetryPolicy;
  /** ISO 8601 duration, e.g. `P30D`: past it the step is overdue and escalated. */
  deadline?: string;
  /** Default `action-required`. */
  onFailure?: FailurePolicy;
}

export interface LifeEventDefinition {
  /** Permanent, kebab-case, e.g. `start-business`. */
  key: string;
  /** Positive integer; a published version never changes. */
  version: number;
  title: LocalisedText;
  description: LocalisedText;
  /**
   * The case inputs: facts this life event may ask of the citizen or look up from an
   * authoritative agency (catalogue source `citizen` or `lookup:<agency>`).
   */
  inputs: string[];
  steps: StepDefinition[];
}

// ---- the catalogue a definition is validated against -------------------------------------

export const SENSITIVITIES = ['public', 'personal', 'sensitive'] as const;
/**
 * public: not about a person (an SNI code); personal: personal data (name, address, identity
 * number); sensitive: special categories or data needing extra care (health, protected identity).
 */
export type Sensitivity = (typeof SENSITIVITIES)[number];

/** Where the authoritative value of a fact comes from. */
export type FactSource =
  { kind: 'citizen' } | { kind: 'lookup'; agency: string } | { kind: 'produced' };

export interface FactType {
  /** Permanent, dotted lower camel case, e.g. `person.address`, `business.orgNumber`. */
  key: string;
  /** JSON Schema (draft 2020-12) of the value; may use leo's formats (personnummer, …). */
  schema: Record<string, unknown>;
  label: LocalisedText;
  description?: LocalisedText;
  sensitivity: Sensitivity;
  source: FactSource;
  /**
   * ISO 8601 duration: how long a record of this fact may be reused by later cases (a register
   * value may change). Absent: a record stays valid until a newer one supersedes it.
   */
  maxAge?: string;
}

export interface AgencyAction {
  /** Permanent, kebab-case, e.g. `register-sole-trader`. */
  name: string;
  title: LocalisedText;
  /** Fact keys this action can produce; a step may declare only these in `produces`. */
  produces: string[];
  /**
   * Facts of the agency's own register (among its `lookups`) that completing this action
   * changes, e.g. a change of address changes the registered address: leo then looks them up
   * afresh, so no stale copy is reused.
   */
  changes?: string[];
  /**
   * How leo's mock of the agency answers this action, for an agency served by a mock: set by an
   * administrator (no code), it takes precedence over a mock built into leo.
   */
  mock?: MockBehaviour;
}

/** A JSON value, as a configured mock may produce it. */
export type JsonValue =
  string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** How a configured mock makes one fact it produces. */
export type MockProduce =
  /** Always this value. */
  | { value: JsonValue }
  /** The value of a fact the application carries (one of the step's needs). */
  | { from: string }
  /**
   * Made up: `reference`, the agency's case number; `organisation-number`, a new valid
   * organisation number never given before; `today`, the date in Sweden (YYYY-MM-DD) the application was received.
   */
  | { generate: MockGenerator }
  /**
   * Made up to a pattern, for identifiers with a format of their own: `{year}`, `{date}`
   * (YYYY-MM-DD), `{reference}`, `{digits:N}` and `{hex:N}` (N random characters, 1-20) are
   * filled in; anything else is kept as written, e.g. `JV-{year}-{digits:6}`.
   */
  | { template: string };

export const MOCK_GENERATORS = ['reference', 'organisation-number', 'today'] as const;
export type MockGenerator = (typeof MOCK_GENERATORS)[number];
/** The placeholders of a template rule, e.g. `{digits:6}`. */
export const MOCK_TEMPLATE_PLACEHOLDER = /\{(year|date|reference|digits:\d{1,2}|hex:\d{1,2})\}/g;

/** How a mock agency answers one action, configured as data. */
export interface MockBehaviour {
  /** Facts the application must carry, else it is refused as `incomplete-application`. */
  requires?: string[];
  /** How each fact the action produces is made: one entry per fact of `produces`. */
  produce?: Record<string, MockProduce>;
  /** The time the agency takes to answer, in ms (0-60000); absent: leo's MOCK_AGENCY_LATENCY_MS. */
  latencyMs?: number;
  /**
   * Decided after review: answered `pending` at once and decided this long after (ISO 8601
   * duration, PT1S to P30D). Absent: decided at once.
   */
  decidedAfter?: string;
  /** Refused on its merits at this rate (0-1; 1 refuses every application). */
  refusal?: { rate: number; code: string; reason: string };
}

export interface Agency {
  /** Permanent, lower case, e.g. `skatteverket`; the queue is `agency.<code>`. */
  code: string;
  name: LocalisedText;
  /**
   * Who serves the agency's queue: `mock`, leo's own mock of it (built in, or configured per
   * action with `mock`), or `external`, an adapter the agency runs with a credential leo issued.
   */
  adapter: 'mock' | 'external';
  actions: AgencyAction[];
  /** Fact keys this agency can be asked for (it is the authoritative source). */
  lookups: string[];
  /**
   * An agency of many separate parties, e.g. the 290 municipalities: a life event names it once
   * (`kommun`), and each step goes to one instance, `<code>-<id>` (`kommun-0180`), with its own
   * queue, results stream and credential, chosen by the value of the step's routing need. The
   * entry itself has no queue. Its actions are every instance's; its `adapter` is the instances'
   * unless an instance names its own.
   */
  instances?: AgencyInstances;
}

/** How an agency of many parties routes a step, and which of its parties leo can reach. */
export interface AgencyInstances {
  /**
   * The format (of the fact types' schemas, e.g. `kommunkod`) of the fact that names the
   * instance: every step to the agency needs exactly one fact of it, whose value is the id.
   */
  routedBy: string;
  /** The instances connected to leo; a step routed to any other waits, shown as delayed. */
  onboarded: AgencyInstance[];
}

export interface AgencyInstance {
  /** The routing fact's value, e.g. `0180`: lower-case letters and digits. */
  id: string;
  name: LocalisedText;
  /** Who serves this instance's queue, when not the agency's `adapter`. */
  adapter?: 'mock' | 'external';
}

export interface Catalogue {
  facts: ReadonlyMap<string, FactType>;
  agencies: ReadonlyMap<string, Agency>;
}

// ---- validation results ------------------------------------------------------------------

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  severity: Severity;
  /** Stable machine-readable code, e.g. `need-unavailable`; see DIAGNOSTIC_CODES. */
  code: string;
  /** JSON pointer into the definition, e.g. `/steps/2/needs/0`. */
  path: string;
  message: string;
}

// ---- planning ----------------------------------------------------------------------------

/** The step-run state machine of the engine. */
export const STEP_STATES = [
  'pending',
  'ready',
  'dispatched',
  'awaiting-decision',
  'awaiting-citizen',
  'completed',
  'failed',
  'skipped',
  'cancelled',
] as const;
export type StepState = (typeof STEP_STATES)[number];

/** A step with the defaults of `withDefaults` applied: what a published version stores. */
export type StepWithDefaults = StepDefinition & {
  after: string[];
  retry: RetryPolicy;
  onFailure: FailurePolicy;
};

export interface DefinitionWithDefaults extends LifeEventDefinition {
  steps: StepWithDefaults[];
}

/**
 * What `plan` says of one step. `in-progress` covers the engine states dispatched,
 * awaiting-decision and awaiting-citizen; `undecided`: its `when` reads an input not yet known.
 */
export type PlannedStatus =
  | 'ready'
  | 'waiting'
  | 'skipped'
  | 'blocked'
  | 'undecided'
  | 'in-progress'
  | 'completed'
  | 'failed'
  | 'cancelled';

export interface PlannedStep {
  id: string;
  status: PlannedStatus;
  /** Step ids of its dependencies that have not (yet) completed or been skipped. */
  waitingFor: string[];
  /**
   * Facts it cannot run (or, when undecided, be decided) without that are not known and that no
   * unfinished dependency will produce.
   */
  missingFacts: string[];
}

export interface Plan {
  /** In definition order. */
  steps: PlannedStep[];
  /** Input facts to obtain now: asked of the citizen, or looked up from an agency. */
  missing: { citizen: string[]; lookup: { key: string; agency: string }[] };
  /** Every step is completed, skipped, failed or cancelled. */
  complete: boolean;
}
