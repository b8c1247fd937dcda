import { uuidv7 } from '../common/uuid.js';
import { Injectable, Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import {
  FACT_LOOKUP,
  STEP_CANCEL,
  STEP_EXECUTE,
  agencyQueueName,
  lookupJobId,
  stepJobId,
  type FactValue,
  type LookupJob,
  type LookupResult,
  type StepCancelJob,
  type StepJob,
  type StepOutcome,
  type StepResult,
} from '#agency-contract';
import { createFactValidator, type FactValidator } from '#facts';
import {
  nominalDurationMs,
  parseIsoDuration,
  plan,
  withDefaults,
  type Catalogue,
  type DefinitionWithDefaults,
  type StepState,
  type StepWithDefaults,
} from '#workflow';
import { DomainError, type FieldProblem } from '../common/domain-error.js';
import type { EngineConfig, ResolvedConfig } from '../config/config.schema.js';
import type { LifeEventDefinitionRow } from '../definitions/definition.entities.js';
import { DefinitionsRepository } from '../definitions/definitions.repository.js';
import {
  EngineRepository,
  type CaseUnit,
  type LoadedCase,
  type StepRunChange,
} from './engine.repository.js';
import {
  FINAL_CASE_STATUSES,
  FINAL_STEP_STATES,
  type CaseEvent,
  type CaseRecord,
  type CaseStatus,
  type FactRecord,
  type LookupRecord,
  type MessageKind,
  type MessageTemplate,
  type NewMessage,
  type OutboxMessage,
  type StepRunRecord,
} from './engine.types.js';
import { CaseChanges } from './case-changes.js';
import { deadlineTimer, type StepDeadlineJob } from './engine.jobs.js';
import { OutboxRelay } from './outbox.relay.js';
import {
  IDENTITY_FACT,
  answerable,
  buildPreview,
  known,
  resolve,
  usableFacts,
  type Preview,
  type Resolution,
} from './resolution.js';

const CATALOGUE_TTL_MS = 5_000;
/** Attempts of a look-up before its facts are asked of the citizen instead. */
const LOOKUP_ATTEMPTS = 5;
/** Tries of one change before it gives up on a case that keeps changing (never seen). */
const MAX_CONFLICT_RETRIES = 50;
/** A timer may fire a little early (clocks of Redis and of this process differ). */
const DEADLINE_TOLERANCE_MS = 1_000;
/** Open (not final) step states: those a deadline still concerns. */
const OPEN_STEP_STATES: readonly StepState[] = [
  'ready',
  'dispatched',
  'awaiting-decision',
  'awaiting-citizen',
];

/** The delay before retry `attempt` (2 = first retry): exponential, capped, with jitter. */
export function backoffDelayMs(
  step: StepWithDefaults,
  attempt: number,
  random: () => number = Math.random,
): number {
  const { initialDelayMs, maxDelayMs, multiplier, jitter } = step.retry.backoff;
  const base = Math.min(maxDelayMs, initialDelayMs * multiplier ** Math.max(0, attempt - 2));
  return Math.round(base * (1 - jitter * random()));
}

interface Context {
  catalogue: Catalogue;
  validator: FactValidator;
  caseRecord: CaseRecord;
  definition: DefinitionWithDefaults;
  runs: Map<string, StepRunRecord>;
  lookups: LookupRecord[];
  /** The subject's newest record of each fact, including those this change appends. */
  facts: Map<string, FactRecord>;
  /** What the change writes besides events, messages and outbox rows. */
  newFacts: FactRecord[];
  newLookups: Set<string>;
  changedLookups: Set<string>;
  changedRuns: Set<string>;
  disclosures: CaseUnit['disclosures'];
  events: CaseEvent[];
  outbox: OutboxMessage[];
  messages: NewMessage[];
}

/**
 * Runs cases: creates them pinned to a published version, dispatches ready steps through the
 * outbox, applies each agency result exactly once, retries, fails, cancels. Every change to a
 * case is one read and one write conditional on the case's revision, with its events, outbox
 * rows and disclosures (docs/decisions/0008-engine.md).
 */
@Injectable()
export class EngineService {
  private readonly logger = new Logger(EngineService.name);
  private readonly definitions = new Map<string, DefinitionWithDefaults>();
  private catalogueCache:
    { at: number; version: string; catalogue: Catalogue; validator: FactValidator } | undefined;
  private catalogueLoading:
    | Promise<{ at: number; version: string; catalogue: Catalogue; validator: FactValidator }>
    | undefined;
  private publishedCache: { at: number; definitions: DefinitionWithDefaults[] } | undefined;
  private readonly settings: EngineConfig;
  private readonly currentVersions = new Map<
    string,
    { at: number; row: LifeEventDefinitionRow | null }
  >();
  /** Cases being changed by this process now: another change to one of them waits its turn. */
  private readonly changing = new Map<string, Promise<void>>();
  /** How many changes wait for each case's turn, and the state the last change left them. */
  private readonly waiting = new Map<string, number>();
  private readonly handoff = new Map<string, LoadedCase>();

  constructor(
    private readonly repository: EngineRepository,
    private readonly definitionsRepository: DefinitionsRepository,
    private readonly relay: OutboxRelay,
    private readonly changes: CaseChanges,
    config: ConfigService<ResolvedConfig, true>,
  ) {
    this.settings = config.get('engine', { infer: true });
  }

  /**
   * The catalogue and its value validator. Whether it changed is asked at most every few
   * seconds (one small query); it is loaded again, and its schemas compiled, only when it did.
   */
  async catalogue(): Promise<{ catalogue: Catalogue; validator: FactValidator }> {
    const cached = this.catalogueCache;
    if (cached && Date.now() - cached.at <= CATALOGUE_TTL_MS) return cached;
    this.catalogueLoading ??= (async () => {
      try {
        const version = await this.definitionsRepository.catalogueVersion();
        if (cached && cached.version === version) {
          cached.at = Date.now();
          return cached;
        }
        const catalogue = await this.definitionsRepository.loadCatalogue();
        this.catalogueCache = {
          at: Date.now(),
          version,
          catalogue,
          validator: createFactValidator([...catalogue.facts.values()]),
        };
        return this.catalogueCache;
      } finally {
        this.catalogueLoading = undefined;
      }
    })();
    return this.catalogueLoading;
  }

  /**
   * The version a new case of a life event starts on, asked of the database at most every few
   * seconds per key (a publication or deprecation takes effect within them).
   */
  private async currentVersion(key: string): Promise<LifeEventDefinitionRow | null> {
    const cached = this.currentVersions.get(key);
    if (cached && Date.now() - cached.at <= CATALOGUE_TTL_MS) return cached.row;
    const row = await this.definitionsRepository.findCurrent(key);
    this.currentVersions.set(key, { at: Date.now(), row });
    return row;
  }

  /** Published versions never change, so each is read once per process. */
  async definition(definitionId: string): Promise<DefinitionWithDefaults> {
    let definition = this.definitions.get(definitionId);
    if (!definition) {
      const row = await this.definitionsRepository.findById(definitionId);
      if (!row) throw new Error(`definition ${definitionId} is missing`);
      definition = withDefaults(row.body);
      this.definitions.set(definitionId, definition);
    }
    return definition;
  }

  // ---- opening, answering, submitting ---------------------------------------------------

  /**
   * Opens a case on the current published version of a life event for a subject, with the
   * personal identity number from their e-identification and any answers they gave. In the
   * same transaction it resolves what the case needs: usable records are reused, facts with an
   * authoritative agency are looked up (jobs through the outbox), and the rest is left to ask.
   * Invalid answers are a 400 naming each field, and nothing is stored.
   */
  async openCase(input: {
    subjectId: string;
    lifeEventKey: string;
    personalNumber: string;
    answers: Record<string, unknown>;
  }): Promise<CaseRecord> {
    const row = await this.currentVersion(input.lifeEventKey);
    if (!row) {
      throw new DomainError(
        'not-found',
        'life-event-not-found',
        `No published life event ${input.lifeEventKey}.`,
      );
    }
    const definition = withDefaults(row.body);
    this.definitions.set(row.id, definition);
    const catalogued = await this.catalogue();
    const { catalogue, validator } = catalogued;
    const answers = this.checkAnswers(definition, catalogue, validator, [], input.answers);
    const now = new Date();
    const caseRecord: CaseRecord = {
      id: uuidv7(),
      subjectId: input.subjectId,
      lifeEventKey: definition.key,
      definitionId: row.id,
      definitionVersion: row.version,
      status: 'open',
      revision: 0,
      createdAt: now,
      updatedAt: now,
      submittedAt: null,
      finishedAt: null,
      consentChecksum: null,
      consentedAt: null,
    };
    const runs: StepRunRecord[] = definition.steps.map((step) => ({
      id: uuidv7(),
      caseId: caseRecord.id,
      stepId: step.id,
      agency: step.agency,
      action: step.action,
      kind: step.kind,
      state: 'pending',
      attempt: 0,
      maxAttempts: step.retry.attempts,
      disclosedFactIds: [],
      result: null,
      agencyReference: null,
      expectedDecisionAt: null,
      deadlineAt: null,
      timerArmedFor: null,
      overdue: false,
      lastError: null,
      readyAt: null,
      dispatchedAt: null,
      finishedAt: null,
      updatedAt: now,
    }));
    const loaded: LoadedCase = {
      caseRecord,
      runs,
      lookups: [],
      facts: await this.repository.currentFacts(input.subjectId),
    };
    const { outbox, context } = await this.change(
      loaded,
      definition,
      catalogued,
      true,
      (context) => {
        const identity = context.facts.get(IDENTITY_FACT);
        this.addFacts(context, [
          ...(identity?.value === input.personalNumber
            ? []
            : [
                {
                  factKey: IDENTITY_FACT,
                  value: input.personalNumber,
                  source: 'e-identification' as const,
                },
              ]),
          ...Object.entries(answers).map(([factKey, value]) => ({
            factKey,
            value,
            source: 'citizen' as const,
          })),
        ]);
        context.events.push({
          type: 'case-opened',
          data: { lifeEvent: definition.key, version: row.version, factKeys: Object.keys(answers) },
        });
        this.resolveCase(context);
      },
    );
    await this.relay.publish(outbox);
    return context.caseRecord;
  }

  /**
   * The citizen's answers to an open case: each validated against the catalogue (and refused
   * when the fact is not theirs to give), recorded as new records superseding older ones, and
   * the case resolved again (an answer can make a condition need more facts).
   */
  async answer(caseId: string, subjectId: string, answers: Record<string, unknown>): Promise<void> {
    const outbox = await this.inCase(
      { caseId },
      (context) => {
        this.requireOpen(context);
        const checked = this.checkAnswers(
          context.definition,
          context.catalogue,
          context.validator,
          context.lookups,
          answers,
        );
        this.addFacts(
          context,
          Object.entries(checked).map(([factKey, value]) => ({
            factKey,
            value,
            source: 'citizen' as const,
          })),
        );
        context.events.push({ type: 'answers-given', data: { factKeys: Object.keys(checked) } });
        this.resolveCase(context);
      },
      { subjectId },
    );
    await this.relay.publish(outbox);
  }

  /** What the case still needs, and (once nothing is missing) its preview: for reads. */
  async resolution(caseId: string): Promise<{
    caseRecord: CaseRecord;
    runs: StepRunRecord[];
    facts: Map<string, FactRecord>;
    resolution: Resolution;
    preview: Preview | undefined;
  }> {
    const loaded = await this.repository.loadCase({ caseId });
    if (!loaded) throw new DomainError('not-found', 'case-not-found', 'No such case.');
    const { caseRecord, lookups, runs } = loaded;
    const definition = await this.definition(caseRecord.definitionId);
    const { catalogue } = await this.catalogue();
    const facts = usableFacts(loaded.facts.values(), catalogue, caseId);
    const resolution = resolve({
      definition,
      catalogue,
      facts,
      lookups,
      states: Object.fromEntries(runs.map((r) => [r.stepId, r.state])),
    });
    const preview =
      resolution.state === 'ready'
        ? buildPreview({ definitionId: caseRecord.definitionId, definition, facts, resolution })
        : undefined;
    return { caseRecord, runs, facts, resolution, preview };
  }

  /**
   * Submits an open case with the citizen's consent to its preview: refused (409, nothing
   * dispatched) when the case is not ready or its preview has changed since `previewChecksum`
   * was shown. Its first steps are dispatched in the same transaction.
   */
  async submitCase(
    caseId: string,
    consent: { previewChecksum: string; subjectId?: string },
  ): Promise<void> {
    const outbox = await this.inCase(
      { caseId },
      async (context) => {
        this.requireOpen(context);
        const facts = this.factsOf(context);
        const resolution = resolve({
          definition: context.definition,
          catalogue: context.catalogue,
          facts,
          lookups: context.lookups,
        });
        if (resolution.state !== 'ready') {
          throw new DomainError(
            'conflict',
            resolution.state === 'resolving' ? 'resolution-pending' : 'answers-missing',
            resolution.state === 'resolving'
              ? 'Facts are still being looked up from the agencies; preview again shortly.'
              : `The case still needs answers: ${resolution.toAsk.join(', ')}.`,
          );
        }
        const preview = buildPreview({
          definitionId: context.caseRecord.definitionId,
          definition: context.definition,
          facts,
          resolution,
        });
        if (preview.checksum !== consent.previewChecksum) {
          throw new DomainError(
            'conflict',
            'preview-stale',
            'The preview has changed since it was shown: look at the new preview and consent to it.',
            [{ path: 'previewChecksum', reason: 'is not the checksum of the current preview' }],
          );
        }
        const now = new Date();
        Object.assign(context.caseRecord, {
          consentChecksum: preview.checksum,
          consentedAt: now,
          submittedAt: now,
        });
        this.setStatus(context, 'running');
        context.events.push({
          type: 'case-submitted',
          data: { previewChecksum: preview.checksum },
        });
        context.messages.push(
          this.message(context, 'leo', 'receipt', 'case-submitted', {
            lifeEvent: context.definition.key,
            agencies: [...new Set(preview.steps.map((p) => p.agency))].sort(),
          }),
        );
        await this.advance(context);
      },
      consent.subjectId === undefined ? {} : { subjectId: consent.subjectId },
    );
    await this.relay.publish(outbox);
  }

  private requireOpen(context: Context): void {
    if (context.caseRecord.status !== 'open') {
      throw new DomainError(
        'conflict',
        'case-not-open',
        `The case is ${context.caseRecord.status}, not open.`,
      );
    }
  }

  /** Valid, normalised answers; or a 400 naming every field that is wrong and why. */
  private checkAnswers(
    definition: DefinitionWithDefaults,
    catalogue: Catalogue,
    validator: FactValidator,
    lookups: readonly LookupRecord[],
    answers: Record<string, unknown>,
  ): Record<string, unknown> {
    const problems: FieldProblem[] = [];
    const normalised: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(answers)) {
      const allowed = answerable(key, definition, catalogue, lookups);
      if (!allowed.ok) {
        problems.push({ path: `answers.${key}`, reason: allowed.reason, code: allowed.code });
        continue;
      }
      const issues = validator.validate(key, value);
      problems.push(
        ...issues.map((i) => ({
          path: `answers.${key}${i.path}`,
          reason: i.reason,
          code: 'invalid-value',
        })),
      );
      if (issues.length === 0) normalised[key] = validator.normalise(key, value);
    }
    if (problems.length > 0) {
      throw new DomainError(
        'invalid',
        'validation-failed',
        `The answers have ${problems.length} problem(s).`,
        problems,
      );
    }
    return normalised;
  }

  /** The subject's records this case may use (see usableFacts). */
  private factsOf(context: Context): Map<string, FactRecord> {
    return usableFacts(context.facts.values(), context.catalogue, context.caseRecord.id);
  }

  /**
   * Appends fact records for the case's subject, each superseding the subject's current record
   * of its key; they are written with the rest of the change.
   */
  private addFacts(
    context: Context,
    records: Array<{
      factKey: string;
      value: unknown;
      source: FactRecord['source'];
      agency?: string;
      stepRunId?: string;
      lookupId?: string;
    }>,
  ): FactRecord[] {
    const now = new Date();
    return records.map((r) => {
      const record: FactRecord = {
        id: uuidv7(),
        subjectId: context.caseRecord.subjectId,
        factKey: r.factKey,
        value: r.value,
        source: r.source,
        agency: r.agency ?? null,
        caseId: context.caseRecord.id,
        stepRunId: r.stepRunId ?? null,
        lookupId: r.lookupId ?? null,
        supersedes: context.facts.get(r.factKey)?.id ?? null,
        createdAt: now,
      };
      context.facts.set(r.factKey, record);
      context.newFacts.push(record);
      return record;
    });
  }

  /** A new look-up of the case, written with the rest of the change. */
  private addLookup(context: Context, agency: string, factKeys: string[]): LookupRecord {
    const now = new Date();
    const lookup: LookupRecord = {
      id: uuidv7(),
      caseId: context.caseRecord.id,
      subjectId: context.caseRecord.subjectId,
      agency,
      factKeys,
      state: 'pending',
      foundKeys: [],
      unavailableKeys: [],
      attempt: 1,
      maxAttempts: LOOKUP_ATTEMPTS,
      disclosedFactIds: [],
      lastError: null,
      createdAt: now,
      updatedAt: now,
      answeredAt: null,
    };
    context.lookups.push(lookup);
    context.newLookups.add(lookup.id);
    return lookup;
  }

  private changeLookup(
    context: Context,
    lookup: LookupRecord,
    change: Partial<LookupRecord>,
  ): void {
    Object.assign(lookup, change);
    if (!context.newLookups.has(lookup.id)) context.changedLookups.add(lookup.id);
  }

  /**
   * Looks up, from their authoritative agencies, the facts the case needs that no usable record
   * holds and that were not asked of that agency in this case yet: one look-up per agency, whose
   * job carries only the identity number (disclosed like any sharing).
   */
  private resolveCase(context: Context): void {
    const facts = this.factsOf(context);
    const states = Object.fromEntries([...context.runs.values()].map((r) => [r.stepId, r.state]));
    const { toLookUp } = resolve({
      definition: context.definition,
      catalogue: context.catalogue,
      facts,
      lookups: context.lookups,
      states,
    });
    for (const [agency, factKeys] of toLookUp) {
      this.dispatchLookup(context, this.addLookup(context, agency, factKeys), 1, 0, facts);
    }
  }

  private dispatchLookup(
    context: Context,
    lookup: LookupRecord,
    attempt: number,
    delayMs: number,
    currentFacts?: Map<string, FactRecord>,
  ): void {
    const facts = currentFacts ?? this.factsOf(context);
    const identity = facts.get(IDENTITY_FACT);
    if (!identity) throw new Error(`case ${context.caseRecord.id} has no identity to look up by`);
    const job: LookupJob = {
      caseId: context.caseRecord.id,
      lookupId: lookup.id,
      attempt,
      idempotencyKey: lookup.id,
      facts: { [IDENTITY_FACT]: identity.value as FactValue },
      factKeys: lookup.factKeys,
    };
    context.outbox.push({
      queue: agencyQueueName(lookup.agency),
      jobName: FACT_LOOKUP,
      jobId: lookupJobId(lookup.id, attempt),
      payload: job,
      availableAt: new Date(Date.now() + delayMs),
    });
    context.disclosures.push({
      subjectId: context.caseRecord.subjectId,
      caseId: context.caseRecord.id,
      lookupId: lookup.id,
      agency: lookup.agency,
      factRecordIds: [identity.id],
      factKeys: [IDENTITY_FACT],
      basis: 'lookup',
    });
    this.changeLookup(context, lookup, { attempt, disclosedFactIds: [identity.id] });
    context.events.push({
      type: 'lookup-requested',
      data: { agency: lookup.agency, factKeys: lookup.factKeys, attempt, delayMs },
    });
  }

  /**
   * Applies an agency's answer to a look-up, once: found values (only keys asked for, each
   * valid) are recorded with the agency as their source; keys it lacks are left to the citizen;
   * a retryable error is retried with backoff, and after the last attempt the keys are asked.
   */
  async applyLookupResult(result: LookupResult): Promise<'applied' | 'ignored'> {
    const state = { applied: false, known: true };
    const outbox = await this.inCase({ lookupId: result.lookupId }, async (context) => {
      const caseId = context.caseRecord.id;
      state.applied = false;
      const lookup = context.lookups.find((l) => l.id === result.lookupId);
      if (!lookup) return;
      const why =
        result.agency !== lookup.agency
          ? 'from another agency'
          : lookup.state !== 'pending'
            ? `look-up is ${lookup.state}`
            : result.attempt !== lookup.attempt
              ? 'stale attempt'
              : undefined;
      if (why !== undefined) {
        this.logger.log({ caseId, lookupId: lookup.id, why }, 'look-up result ignored');
        return;
      }
      state.applied = true;
      const outcome = result.result;
      if (outcome.outcome === 'retryable-error') {
        if (lookup.attempt < lookup.maxAttempts) {
          const delayMs = Math.round(
            Math.min(60_000, 500 * 2 ** (lookup.attempt - 1)) * (1 - 0.2 * Math.random()),
          );
          this.dispatchLookup(context, lookup, lookup.attempt + 1, delayMs);
          return;
        }
        this.changeLookup(context, lookup, {
          state: 'failed',
          unavailableKeys: lookup.factKeys,
          lastError: outcome.code,
        });
        context.events.push({
          type: 'lookup-failed',
          data: { agency: lookup.agency, factKeys: lookup.factKeys, code: outcome.code },
        });
      } else {
        const found: Record<string, unknown> = {};
        const refused: FieldProblem[] = [];
        for (const [key, value] of Object.entries(outcome.facts)) {
          if (!lookup.factKeys.includes(key)) {
            refused.push({ path: key, reason: 'was not asked for', code: 'undeclared' });
            continue;
          }
          const issues = context.validator.validate(key, value);
          if (issues.length > 0) {
            refused.push(
              ...issues.map((i) => ({
                path: `${key}${i.path}`,
                reason: i.reason,
                code: 'invalid-value',
              })),
            );
            continue;
          }
          found[key] = context.validator.normalise(key, value);
        }
        if (refused.length > 0) {
          this.logger.warn(
            { caseId, lookupId: lookup.id, problems: refused.map((p) => p.path) },
            'look-up answer partly refused',
          );
          context.events.push({
            type: 'lookup-result-refused',
            data: { agency: lookup.agency, problems: refused },
          });
        }
        this.addFacts(
          context,
          Object.entries(found).map(([factKey, value]) => ({
            factKey,
            value,
            source: 'lookup' as const,
            agency: lookup.agency,
            lookupId: lookup.id,
          })),
        );
        const foundKeys = Object.keys(found).sort();
        const unavailableKeys = lookup.factKeys.filter((k) => !(k in found));
        this.changeLookup(context, lookup, { state: 'answered', foundKeys, unavailableKeys });
        context.events.push({
          type: 'lookup-answered',
          data: { agency: lookup.agency, foundKeys, unavailableKeys },
        });
      }
      if (context.caseRecord.status === 'open') this.resolveCase(context);
      else if (context.caseRecord.status === 'running') await this.advance(context);
    }).catch((error: unknown) => {
      if (!(error instanceof DomainError && error.code === 'case-not-found')) throw error;
      state.known = false;
      return [];
    });
    if (!state.known) {
      this.logger.warn({ lookupId: result.lookupId }, 'result for an unknown look-up ignored');
    }
    await this.relay.publish(outbox);
    return state.applied ? 'applied' : 'ignored';
  }

  // ---- results --------------------------------------------------------------------------

  /**
   * Applies one agency result, exactly once: a result for another agency, another attempt, a
   * step that has moved on, or a finished case changes nothing (a re-delivered result is normal
   * under at-least-once delivery).
   */
  async applyResult(result: StepResult): Promise<'applied' | 'ignored'> {
    const state = { applied: false, known: true };
    const outbox = await this.inCase({ stepRunId: result.stepRunId }, async (context) => {
      const caseId = context.caseRecord.id;
      state.applied = false;
      const run = [...context.runs.values()].find((r) => r.id === result.stepRunId);
      const step = context.definition.steps.find((s) => s.id === run?.stepId);
      if (!run || !step) return;
      const ignore = (why: string): void => {
        this.logger.log(
          {
            caseId,
            stepRunId: run.id,
            attempt: result.attempt,
            outcome: result.result.outcome,
            why,
          },
          'result ignored',
        );
      };
      const open: StepState[] =
        result.result.outcome === 'pending'
          ? ['ready', 'dispatched']
          : ['ready', 'dispatched', 'awaiting-decision'];
      const why =
        result.agency !== run.agency
          ? 'from another agency'
          : FINAL_CASE_STATUSES.includes(context.caseRecord.status)
            ? `case is ${context.caseRecord.status}`
            : result.attempt !== run.attempt
              ? 'stale attempt'
              : !open.includes(run.state)
                ? `step is ${run.state}`
                : undefined;
      if (why !== undefined) {
        ignore(why);
        return;
      }
      state.applied = true;
      this.applyOutcome(context, run, step, result);
      if (context.caseRecord.status === 'running') await this.advance(context);
    }).catch((error: unknown) => {
      if (!(error instanceof DomainError && error.code === 'case-not-found')) throw error;
      state.known = false;
      return [];
    });
    if (!state.known) {
      this.logger.warn({ stepRunId: result.stepRunId }, 'result for an unknown step run ignored');
    }
    await this.relay.publish(outbox);
    return state.applied ? 'applied' : 'ignored';
  }

  /**
   * A decision an agency reports over REST for one of its steps awaiting a decision. A step of
   * another agency is reported as not found: an agency learns nothing of others' steps.
   */
  async decide(
    agency: string,
    stepRunId: string,
    decision: Extract<StepOutcome, { outcome: 'completed' | 'rejected' }>,
  ): Promise<void> {
    const notFound = new DomainError(
      'not-found',
      'step-not-found',
      'No step of yours with that id.',
    );
    const outbox = await this.inCase({ stepRunId }, async (context) => {
      const run = [...context.runs.values()].find((r) => r.id === stepRunId);
      const step = context.definition.steps.find((s) => s.id === run?.stepId);
      if (!run || !step || run.agency !== agency) throw notFound;
      if (
        run.state !== 'awaiting-decision' ||
        FINAL_CASE_STATUSES.includes(context.caseRecord.status)
      ) {
        throw new DomainError(
          'conflict',
          'not-awaiting-decision',
          `The step is ${run.state}: it is not awaiting a decision.`,
        );
      }
      if (decision.outcome === 'completed') {
        // Over REST the agency is told what is wrong and nothing changes; on the queue, where
        // nobody can be told, a bad result fails the step instead.
        const problems = this.checkProduced(context.validator, step, decision.produced);
        if (problems) {
          throw new DomainError(
            'invalid',
            'validation-failed',
            'The decision sets facts the step may not set, or invalid values.',
            problems.map((p) => ({ ...p, path: `produced.${p.path}` })),
          );
        }
      }
      context.events.push({
        type: 'decision-reported',
        stepId: run.stepId,
        data: { outcome: decision.outcome, via: 'rest' },
      });
      this.applyOutcome(context, run, step, {
        stepRunId,
        attempt: run.attempt,
        agency,
        result: decision,
        reportedAt: new Date().toISOString(),
      });
      if (context.caseRecord.status === 'running') await this.advance(context);
    }).catch((error: unknown) => {
      throw error instanceof DomainError && error.code === 'case-not-found' ? notFound : error;
    });
    await this.relay.publish(outbox);
  }

  private applyOutcome(
    context: Context,
    run: StepRunRecord,
    step: StepWithDefaults,
    result: StepResult,
  ): void {
    const outcome = result.result;
    switch (outcome.outcome) {
      case 'completed': {
        const refusal = this.checkProduced(context.validator, step, outcome.produced);
        if (refusal) {
          this.logger.warn(
            { caseId: run.caseId, stepRunId: run.id, problems: refusal.map((p) => p.path) },
            'result refused',
          );
          context.events.push({
            type: 'result-refused',
            stepId: run.stepId,
            data: { problems: refusal },
          });
          this.failStep(
            context,
            run,
            step,
            'invalid-result',
            'The agency answered with facts the step may not set, or invalid values.',
          );
          return;
        }
        this.addFacts(
          context,
          Object.entries(outcome.produced).map(([factKey, value]) => ({
            factKey,
            value: context.validator.normalise(factKey, value),
            source: 'agency' as const,
            agency: run.agency,
            stepRunId: run.id,
          })),
        );
        this.setRun(context, run, {
          state: 'completed',
          result: {
            outcome: 'completed',
            producedKeys: Object.keys(outcome.produced),
            reference: outcome.reference ?? null,
          },
          agencyReference: outcome.reference ?? run.agencyReference,
        });
        context.events.push({
          type: 'step-completed',
          stepId: run.stepId,
          data: {
            attempt: run.attempt,
            producedKeys: Object.keys(outcome.produced),
            reference: outcome.reference ?? null,
          },
        });
        this.refreshChanged(context, run);
        if (step.kind === 'decision') {
          context.messages.push(
            this.message(context, run.agency, 'decision', 'step-granted', {
              stepId: run.stepId,
              action: run.action,
              reference: outcome.reference ?? run.agencyReference,
            }),
          );
        }
        return;
      }
      case 'pending':
        this.setRun(context, run, {
          state: 'awaiting-decision',
          agencyReference: outcome.reference,
          expectedDecisionAt: outcome.expectedDecisionAt
            ? new Date(outcome.expectedDecisionAt)
            : null,
        });
        context.events.push({
          type: 'step-awaiting-decision',
          stepId: run.stepId,
          data: {
            reference: outcome.reference,
            expectedDecisionAt: outcome.expectedDecisionAt ?? null,
          },
        });
        context.messages.push(
          this.message(context, run.agency, 'receipt', 'step-awaiting-decision', {
            stepId: run.stepId,
            action: run.action,
            reference: outcome.reference,
            expectedDecisionAt: outcome.expectedDecisionAt ?? null,
          }),
        );
        return;
      case 'rejected':
        context.events.push({
          type: 'step-rejected',
          stepId: run.stepId,
          data: {
            code: outcome.code,
            reason: outcome.reason,
            reference: outcome.reference ?? null,
          },
        });
        context.messages.push(
          this.message(context, run.agency, 'decision', 'step-refused', {
            stepId: run.stepId,
            action: run.action,
            reference: outcome.reference ?? run.agencyReference,
            code: outcome.code,
            reason: outcome.reason,
          }),
        );
        this.failStep(context, run, step, outcome.code, outcome.reason);
        return;
      case 'retryable-error':
        if (run.attempt < run.maxAttempts) {
          const delayMs = backoffDelayMs(step, run.attempt + 1);
          context.events.push({
            type: 'step-retry-scheduled',
            stepId: run.stepId,
            data: { code: outcome.code, attempt: run.attempt + 1, delayMs },
          });
          this.dispatch(context, run, step, run.attempt + 1, delayMs, outcome.code);
        } else {
          context.events.push({
            type: 'step-attempts-exhausted',
            stepId: run.stepId,
            data: { code: outcome.code },
          });
          this.failStep(context, run, step, 'attempts-exhausted', outcome.reason);
        }
        return;
    }
  }

  /**
   * A completed action that changes facts of its agency's register (a change of address): the
   * subject's records of those facts are stale, so they are looked up afresh, for this case.
   */
  private refreshChanged(context: Context, run: StepRunRecord): void {
    const action = context.catalogue.agencies
      .get(run.agency)
      ?.actions.find((a) => a.name === run.action);
    if (!action?.changes?.length) return;
    const facts = this.factsOf(context);
    const held = action.changes.filter((key) => facts.has(key));
    if (held.length === 0) return;
    const lookup = this.addLookup(context, run.agency, held);
    context.events.push({
      type: 'facts-changed',
      stepId: run.stepId,
      data: { agency: run.agency, factKeys: held },
    });
    this.dispatchLookup(context, lookup, 1, 0, facts);
  }

  /** Only the declared facts, all of them, each valid: anything else is refused. */
  private checkProduced(
    validator: FactValidator,
    step: StepWithDefaults,
    produced: Record<string, FactValue>,
  ): FieldProblem[] | undefined {
    const problems: FieldProblem[] = [];
    for (const key of Object.keys(produced)) {
      if (!step.produces.includes(key))
        problems.push({
          path: key,
          reason: 'is not a fact this step produces',
          code: 'undeclared',
        });
    }
    for (const key of step.produces) {
      if (!(key in produced)) {
        problems.push({ path: key, reason: 'was not produced', code: 'missing' });
        continue;
      }
      for (const issue of validator.validate(key, produced[key])) {
        problems.push({ path: `${key}${issue.path}`, reason: issue.reason, code: 'invalid-value' });
      }
    }
    return problems.length > 0 ? problems : undefined;
  }

  private failStep(
    context: Context,
    run: StepRunRecord,
    step: StepWithDefaults,
    code: string,
    reason: string,
  ): void {
    this.setRun(context, run, {
      state: 'failed',
      lastError: code,
      result: { outcome: 'failed', code },
    });
    context.events.push({ type: 'step-failed', stepId: run.stepId, data: { code, reason } });
    if (step.onFailure === 'fail-case') {
      this.finishCase(context, 'failed');
      this.cancelRemaining(context, 'case failed');
      context.messages.push(
        this.message(context, 'leo', 'notice', 'case-failed', { stepId: run.stepId, code }),
      );
    } else {
      this.setStatus(context, 'action-required');
      context.events.push({ type: 'case-action-required', stepId: run.stepId, data: { code } });
      context.messages.push(
        this.message(context, 'leo', 'notice', 'case-action-required', {
          stepId: run.stepId,
          code,
        }),
      );
    }
  }

  private message(
    context: Context,
    sender: string,
    kind: MessageKind,
    template: MessageTemplate,
    params: Record<string, unknown> = {},
  ): NewMessage {
    const stepId = typeof params.stepId === 'string' ? params.stepId : undefined;
    return {
      subjectId: context.caseRecord.subjectId,
      caseId: context.caseRecord.id,
      ...(stepId ? { stepId } : {}),
      sender,
      kind,
      template,
      params: { lifeEvent: context.caseRecord.lifeEventKey, ...params },
    };
  }

  // ---- administration -------------------------------------------------------------------

  /**
   * Cancels a case, by an administrator or by its citizen (`subjectId`: another's case is not
   * found): nothing more starts; adapters working on its steps are told to stop.
   */
  async cancelCase(
    caseId: string,
    reason: string,
    by: { role: 'admin' } | { role: 'citizen'; subjectId: string } = { role: 'admin' },
  ): Promise<void> {
    const outbox = await this.inCase(
      { caseId },
      (context) => {
        if (FINAL_CASE_STATUSES.includes(context.caseRecord.status)) {
          throw new DomainError(
            'conflict',
            'case-finished',
            `The case is already ${context.caseRecord.status}.`,
          );
        }
        this.cancelRemaining(context, reason);
        this.finishCase(context, 'cancelled');
        context.events.push({ type: 'case-cancelled', data: { reason, by: by.role } });
        context.messages.push(
          this.message(context, 'leo', 'notice', 'case-cancelled', { by: by.role }),
        );
      },
      by.role === 'citizen' ? { subjectId: by.subjectId } : {},
    );
    await this.relay.publish(outbox);
  }

  /**
   * The citizen did what a citizen task asked (signed, paid): the values it produces are
   * validated (only those the step declares, all of them), recorded as given by the citizen,
   * and the case goes on. Another citizen's case is not found.
   */
  async completeCitizenTask(
    caseId: string,
    subjectId: string,
    stepId: string,
    produced: Record<string, FactValue>,
  ): Promise<void> {
    const outbox = await this.inCase(
      { caseId },
      async (context) => {
        const run = context.runs.get(stepId);
        const step = context.definition.steps.find((s) => s.id === stepId);
        if (!run || !step || step.kind !== 'citizen-task') {
          throw new DomainError('not-found', 'task-not-found', `The case has no task ${stepId}.`);
        }
        if (run.state !== 'awaiting-citizen' || context.caseRecord.status !== 'running') {
          throw new DomainError(
            'conflict',
            'task-not-waiting',
            `The task is ${run.state}: it is not waiting for you.`,
          );
        }
        const problems = this.checkProduced(context.validator, step, produced);
        if (problems) {
          throw new DomainError(
            'invalid',
            'validation-failed',
            'The task was given facts it does not take, or invalid values.',
            problems.map((p) => ({ ...p, path: `facts.${p.path}` })),
          );
        }
        this.addFacts(
          context,
          Object.entries(produced).map(([factKey, value]) => ({
            factKey,
            value: context.validator.normalise(factKey, value),
            source: 'citizen' as const,
            stepRunId: run.id,
          })),
        );
        this.setRun(context, run, {
          state: 'completed',
          result: { outcome: 'completed', producedKeys: Object.keys(produced), reference: null },
        });
        context.events.push({
          type: 'citizen-task-completed',
          stepId,
          data: { producedKeys: Object.keys(produced) },
        });
        await this.advance(context);
      },
      { subjectId },
    );
    await this.relay.publish(outbox);
  }

  /** Gives a failed step a fresh set of attempts and resumes its case. */
  async retryStep(caseId: string, stepId: string): Promise<void> {
    const outbox = await this.inCase({ caseId }, async (context) => {
      const run = context.runs.get(stepId);
      const step = context.definition.steps.find((s) => s.id === stepId);
      if (!run || !step)
        throw new DomainError('not-found', 'step-not-found', `The case has no step ${stepId}.`);
      if (run.state !== 'failed' || context.caseRecord.status !== 'action-required') {
        throw new DomainError(
          'conflict',
          'step-not-retryable',
          `Only a failed step of a case needing action can be retried; ${stepId} is ${run.state}.`,
        );
      }
      this.setStatus(context, 'running');
      context.events.push({ type: 'step-retried-by-admin', stepId });
      this.setRun(context, run, { maxAttempts: run.attempt + step.retry.attempts });
      this.dispatch(context, run, step, run.attempt + 1, 0, null, undefined, true);
      await this.advance(context);
    });
    await this.relay.publish(outbox);
  }

  /**
   * A step's deadline timer fired: the step, if still open with that deadline, is escalated.
   * A timer for a step that finished, or whose deadline moved, changes nothing.
   */
  async stepDeadlinePassed(job: StepDeadlineJob): Promise<'escalated' | 'ignored'> {
    const outcome = { escalated: false };
    await this.inCase({ stepRunId: job.stepRunId }, (context) => {
      outcome.escalated = false;
      const run = [...context.runs.values()].find((r) => r.id === job.stepRunId);
      if (!run || run.deadlineAt?.toISOString() !== job.deadline) return;
      outcome.escalated = this.escalate(context, run, Date.now() + DEADLINE_TOLERANCE_MS);
    }).catch((error: unknown) => {
      if (!(error instanceof DomainError && error.code === 'case-not-found')) throw error;
      return [];
    });
    return outcome.escalated ? 'escalated' : 'ignored';
  }

  /**
   * The safety net of deadline timers (lost with Redis' data): escalates every open step past
   * its deadline that has not been escalated yet.
   */
  async escalateOverdue(limit = 100): Promise<number> {
    let escalated = 0;
    for (const caseId of await this.repository.casesWithOverdueSteps(limit)) {
      let here = 0;
      await this.inCase({ caseId }, (context) => {
        here = 0;
        const now = Date.now();
        for (const run of context.runs.values()) {
          if (this.escalate(context, run, now)) here += 1;
        }
      });
      escalated += here;
    }
    if (escalated > 0)
      this.logger.warn({ steps: escalated }, 'steps past their deadline escalated');
    return escalated;
  }

  /**
   * Marks an open step past its deadline overdue (administrators see it; the citizen is told),
   * with an event in the case history. Never dropped: the step keeps waiting for its answer.
   */
  private escalate(context: Context, run: StepRunRecord, now: number): boolean {
    if (
      !OPEN_STEP_STATES.includes(run.state) ||
      run.overdue ||
      !run.deadlineAt ||
      run.deadlineAt.getTime() > now ||
      FINAL_CASE_STATUSES.includes(context.caseRecord.status)
    ) {
      return false;
    }
    this.setRun(context, run, { overdue: true });
    const deadline = run.deadlineAt.toISOString();
    context.events.push({
      type: 'step-overdue',
      stepId: run.stepId,
      data: { deadline, state: run.state, agency: run.agency },
    });
    context.messages.push(
      this.message(context, 'leo', 'notice', 'step-overdue', {
        stepId: run.stepId,
        action: run.action,
        agency: run.agency,
        deadline,
        waitingFor: run.state === 'awaiting-citizen' ? 'citizen' : 'agency',
      }),
    );
    return true;
  }

  private cancelRemaining(context: Context, reason: string): void {
    for (const run of context.runs.values()) {
      if (FINAL_STEP_STATES.includes(run.state)) continue;
      // A ready step may already be on its queue (published, not yet marked dispatched).
      const inFlight = ['ready', 'dispatched', 'awaiting-decision'].includes(run.state);
      this.setRun(context, run, { state: 'cancelled' });
      context.events.push({ type: 'step-cancelled', stepId: run.stepId, data: { inFlight } });
      if (inFlight) {
        const job: StepCancelJob = {
          caseId: run.caseId,
          stepRunId: run.id,
          action: run.action,
          idempotencyKey: run.id,
          reason,
        };
        context.outbox.push({
          queue: agencyQueueName(run.agency),
          jobName: STEP_CANCEL,
          jobId: `${run.id}.cancel`,
          payload: job,
        });
      }
    }
  }

  private finishCase(context: Context, status: 'completed' | 'failed' | 'cancelled'): void {
    this.setStatus(context, status);
  }

  /** The case's new status (written with the rest of the change); finished ones get their time. */
  private setStatus(context: Context, status: CaseStatus): void {
    context.caseRecord.status = status;
    context.caseRecord.finishedAt = FINAL_CASE_STATUSES.includes(status) ? new Date() : null;
  }

  // ---- planning and dispatch ------------------------------------------------------------

  /**
   * Runs the planner until nothing changes: skips what its condition rules out, dispatches what
   * is ready (or hands it to the citizen), and completes the case when every step is final.
   */
  private async advance(context: Context): Promise<void> {
    const { catalogue } = context;
    let facts = this.factsOf(context);
    for (;;) {
      const states = Object.fromEntries([...context.runs.values()].map((r) => [r.stepId, r.state]));
      const planned = plan(context.definition, known(facts), states, catalogue);
      let changed = false;
      for (const p of planned.steps) {
        const run = context.runs.get(p.id);
        const step = context.definition.steps.find((s) => s.id === p.id);
        if (!run || !step || run.state !== 'pending') continue;
        if (p.status === 'skipped') {
          this.setRun(context, run, { state: 'skipped' });
          context.events.push({ type: 'step-skipped', stepId: run.stepId });
          changed = true;
        } else if (p.status === 'ready') {
          if (step.kind === 'citizen-task') {
            this.awaitCitizen(context, run, step);
          } else {
            this.dispatch(context, run, step, 1, 0, null, facts);
          }
          changed = true;
        }
      }
      if (!changed) break;
      facts = this.factsOf(context);
    }
    const runs = [...context.runs.values()];
    if (
      context.caseRecord.status === 'running' &&
      runs.every((r) => FINAL_STEP_STATES.includes(r.state)) &&
      !runs.some((r) => r.state === 'failed')
    ) {
      this.finishCase(context, 'completed');
      context.events.push({ type: 'case-completed' });
      context.messages.push(this.message(context, 'leo', 'notice', 'case-completed'));
      await this.tellFewerAnswers(context);
    }
  }

  /** A citizen task became due: the case waits for the citizen, who is told, until its deadline. */
  private awaitCitizen(context: Context, run: StepRunRecord, step: StepWithDefaults): void {
    const deadlineAt = this.deadlineFrom(step, 0);
    this.setRun(context, run, { state: 'awaiting-citizen', deadlineAt });
    if (deadlineAt) this.setTimer(context, run, deadlineAt);
    context.events.push({ type: 'step-awaiting-citizen', stepId: run.stepId });
    context.messages.push(
      this.message(context, step.agency, 'request', 'task-waiting', {
        stepId: run.stepId,
        action: run.action,
        deadline: deadlineAt?.toISOString() ?? null,
      }),
    );
  }

  /**
   * Proactive reuse: once a case has completed, the other life events that now need fewer
   * answers from the citizen than before it (its facts are on file) are named in a message.
   */
  private async tellFewerAnswers(context: Context): Promise<void> {
    const records = [...context.facts.values()];
    const after = usableFacts(records, context.catalogue, '');
    const before = usableFacts(
      records.filter((r) => r.caseId !== context.caseRecord.id),
      context.catalogue,
      '',
    );
    const fewer: Array<{ lifeEvent: string; before: number; now: number }> = [];
    // Only a life event that would ask one of this case's facts can need fewer answers: facts a
    // citizen gives or an agency produces (never the identity, never a register's look-up).
    const fromThisCase = new Set(
      records
        .filter((r) => r.caseId === context.caseRecord.id && r.factKey !== IDENTITY_FACT)
        .filter((r) => context.catalogue.facts.get(r.factKey)?.source.kind !== 'lookup')
        .map((r) => r.factKey),
    );
    // What a life event may ask: its inputs that the citizen gives, less those on file.
    const askable = (definition: DefinitionWithDefaults): string[] =>
      definition.inputs.filter(
        (key) =>
          key !== IDENTITY_FACT && context.catalogue.facts.get(key)?.source.kind === 'citizen',
      );
    for (const other of await this.publishedDefinitions()) {
      if (other.key === context.definition.key) continue;
      if (!other.inputs.some((key) => fromThisCase.has(key))) continue;
      const count = (facts: Map<string, FactRecord>): number =>
        askable(other).filter((key) => !facts.has(key)).length;
      const [was, now] = [count(before), count(after)];
      if (now < was) fewer.push({ lifeEvent: other.key, before: was, now });
    }
    if (fewer.length > 0) {
      context.messages.push(
        this.message(context, 'leo', 'notice', 'fewer-answers', { lifeEvents: fewer }),
      );
    }
  }

  /** The current published version of every life event (cached briefly: they rarely change). */
  async publishedDefinitions(): Promise<DefinitionWithDefaults[]> {
    if (!this.publishedCache || Date.now() - this.publishedCache.at > CATALOGUE_TTL_MS) {
      const rows = await this.definitionsRepository.listPublished();
      const current = new Map<string, DefinitionWithDefaults>();
      for (const row of rows)
        if (!current.has(row.key)) current.set(row.key, withDefaults(row.body));
      this.publishedCache = { at: Date.now(), definitions: [...current.values()] };
    }
    return this.publishedCache.definitions;
  }

  private deadlineFrom(step: StepWithDefaults, delayMs: number): Date | null {
    const duration = step.deadline ? parseIsoDuration(step.deadline) : undefined;
    return duration ? new Date(Date.now() + delayMs + nominalDurationMs(duration)) : null;
  }

  /**
   * The delayed job that escalates the step when its deadline passes, written through the
   * outbox now if the deadline could pass before the arming sweep would write it (decision
   * 0015); otherwise left to the sweep, so a step answered within minutes, as most are, never
   * leaves a timer in Redis for the weeks until its deadline.
   */
  private setTimer(context: Context, run: StepRunRecord, deadlineAt: Date): void {
    const { timerArmAfterMs, reconcileIntervalMs } = this.settings;
    const armedBySweepBy = Date.now() + timerArmAfterMs + 2 * reconcileIntervalMs;
    if (timerArmAfterMs > 0 && deadlineAt.getTime() > armedBySweepBy) return;
    context.outbox.push(deadlineTimer(run, deadlineAt));
    this.setRun(context, run, { timerArmedFor: deadlineAt });
  }

  /**
   * Hands one attempt of a step to its agency: the job carries exactly the step's `needs`, and
   * the sharing is logged as a disclosure in the same transaction (invariants 4 and 5). The
   * deadline runs from the first attempt (retries do not extend it) unless `freshDeadline`.
   */
  private dispatch(
    context: Context,
    run: StepRunRecord,
    step: StepWithDefaults,
    attempt: number,
    delayMs: number,
    previousError: string | null,
    currentFacts?: Map<string, FactRecord>,
    freshDeadline = false,
  ): void {
    const facts = currentFacts ?? this.factsOf(context);
    const records = step.needs.map((key) => {
      const record = facts.get(key);
      if (!record) throw new Error(`step ${step.id} is ready but fact ${key} is missing`);
      return record;
    });
    const keep = run.deadlineAt !== null && attempt > 1 && !freshDeadline;
    const deadlineAt = keep ? run.deadlineAt : this.deadlineFrom(step, delayMs);
    const job: StepJob = {
      caseId: run.caseId,
      stepRunId: run.id,
      stepId: step.id,
      action: step.action,
      attempt,
      idempotencyKey: run.id,
      facts: Object.fromEntries(records.map((r) => [r.factKey, r.value as FactValue])),
      ...(deadlineAt ? { deadline: deadlineAt.toISOString() } : {}),
    };
    context.outbox.push({
      queue: agencyQueueName(step.agency),
      jobName: STEP_EXECUTE,
      jobId: stepJobId(run.id, attempt),
      payload: job,
      availableAt: new Date(Date.now() + delayMs),
    });
    if (deadlineAt && !keep) this.setTimer(context, run, deadlineAt);
    context.disclosures.push({
      subjectId: context.caseRecord.subjectId,
      caseId: run.caseId,
      stepRunId: run.id,
      agency: step.agency,
      factRecordIds: records.map((r) => r.id),
      factKeys: step.needs,
      basis: 'consent',
    });
    this.setRun(context, run, {
      state: 'ready',
      attempt,
      disclosedFactIds: records.map((r) => r.id),
      deadlineAt,
      lastError: previousError,
      ...(keep ? {} : { overdue: false }),
    });
    context.events.push({
      type: 'step-dispatched',
      stepId: step.id,
      data: { attempt, agency: step.agency, factKeys: step.needs, delayMs },
    });
  }

  private setRun(context: Context, run: StepRunRecord, change: StepRunChange): void {
    context.changedRuns.add(run.id);
    Object.assign(
      run,
      Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined)),
    );
    // As the repository sets them in the same statement (the snapshot for listeners).
    const now = new Date();
    run.updatedAt = now;
    if (change.state === 'ready') run.readyAt = now;
    if (change.state !== undefined && FINAL_STEP_STATES.includes(change.state))
      run.finishedAt = now;
  }

  /**
   * One change to one case: read it (one statement), run `work`, write what it did (one
   * statement, only if nobody changed the case meanwhile), and on a conflict do it all again
   * from a fresh read, so `work` must keep its effects in the context (it may run more than
   * once; only the last run counts). Returns the outbox rows to publish. With `subjectId`, a
   * case of another subject is not found (a citizen learns nothing of others').
   */
  private async inCase(
    by: { caseId: string } | { stepRunId: string } | { lookupId: string },
    work: (context: Context) => void | Promise<void>,
    options: { subjectId?: string } = {},
  ): Promise<Array<{ id: string } & OutboxMessage>> {
    const catalogue = await this.catalogue();
    let handed: LoadedCase | undefined;
    for (let attempt = 1; ; attempt += 1) {
      const loaded = handed ?? (await this.repository.loadCase(by, options.subjectId));
      handed = undefined;
      if (!loaded) throw new DomainError('not-found', 'case-not-found', 'No such case.');
      // Changes to one case in this process take turns (the results of parallel steps arrive
      // together): one waiting for another goes on from the state that one committed (or reads
      // again), rather than conflict.
      const caseId = loaded.caseRecord.id;
      const busy = this.changing.get(caseId);
      if (busy) {
        this.waiting.set(caseId, (this.waiting.get(caseId) ?? 0) + 1);
        try {
          await busy;
        } finally {
          const left = (this.waiting.get(caseId) ?? 1) - 1;
          if (left > 0) this.waiting.set(caseId, left);
          else this.waiting.delete(caseId);
        }
        const next = this.handoff.get(caseId);
        this.handoff.delete(caseId);
        // Only a state at least as new as this read: another replica may have committed after
        // the one this process handed on, and a change that decides to write nothing (a result
        // judged stale) is not checked against the revision.
        if (
          next &&
          next.caseRecord.revision >= loaded.caseRecord.revision &&
          (options.subjectId === undefined || next.caseRecord.subjectId === options.subjectId)
        ) {
          handed = next;
        }
        attempt -= 1;
        continue;
      }
      let done = (): void => undefined;
      this.changing.set(
        caseId,
        new Promise<void>((resolve) => {
          done = resolve;
        }),
      );
      let result: Awaited<ReturnType<EngineService['change']>>;
      try {
        const definition = await this.definition(loaded.caseRecord.definitionId);
        result = await this.change(loaded, definition, catalogue, false, work);
        if (result.committed && this.waiting.has(caseId)) {
          // The committed state, for the change waiting its turn (no one else holds it now).
          const { context } = result;
          this.handoff.set(caseId, {
            caseRecord: context.caseRecord,
            runs: [...context.runs.values()],
            lookups: context.lookups,
            facts: context.facts,
          });
        }
      } finally {
        this.changing.delete(caseId);
        done();
      }
      const { committed, outbox } = result;
      if (committed) return outbox;
      if (attempt >= MAX_CONFLICT_RETRIES) {
        throw new Error(
          `case ${loaded.caseRecord.id} kept changing under ${String(attempt)} attempts`,
        );
      }
      // Another change committed first (results of parallel steps arrive together): a short,
      // growing, jittered pause spreads the next tries out.
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 * attempt)));
    }
  }

  /**
   * Runs `work` on a loaded case and commits what it did, with its events, messages and outbox
   * rows; listeners hear of it once committed.
   */
  private async change(
    loaded: LoadedCase,
    definition: DefinitionWithDefaults,
    { catalogue, validator }: { catalogue: Catalogue; validator: FactValidator },
    creates: boolean,
    work: (context: Context) => void | Promise<void>,
  ): Promise<{
    committed: boolean;
    outbox: Array<{ id: string } & OutboxMessage>;
    context: Context;
  }> {
    const { caseRecord } = loaded;
    const previousStatus: CaseStatus | null = creates ? null : caseRecord.status;
    const expectedRevision = creates ? null : caseRecord.revision;
    const context: Context = {
      catalogue,
      validator,
      caseRecord,
      definition,
      runs: new Map(loaded.runs.map((r) => [r.stepId, r])),
      lookups: loaded.lookups,
      facts: loaded.facts,
      newFacts: [],
      newLookups: new Set(),
      changedLookups: new Set(),
      changedRuns: new Set(),
      disclosures: [],
      events: [],
      outbox: [],
      messages: [],
    };
    await work(context);
    if (!creates && context.events.length === 0) return { committed: true, outbox: [], context };
    const base = caseRecord.revision;
    caseRecord.revision = base + context.events.length;
    caseRecord.updatedAt = new Date();
    const runs = creates
      ? [...context.runs.values()]
      : [...context.runs.values()].filter((r) => context.changedRuns.has(r.id));
    const { committed, outbox } = await this.repository.commitCase({
      caseRecord,
      expectedRevision,
      runs,
      events: context.events.map((e, i) => ({ ...e, seq: base + i + 1 })),
      facts: context.newFacts,
      newLookups: context.lookups.filter((l) => context.newLookups.has(l.id)),
      changedLookups: context.lookups.filter((l) => context.changedLookups.has(l.id)),
      disclosures: context.disclosures,
      messages: context.messages,
      outbox: context.outbox,
    });
    if (committed) {
      this.changes.emit({
        caseRecord,
        previousStatus,
        events: [...context.events],
        steps: [...context.runs.values()],
        committedAt: new Date(),
      });
    }
    return { committed, outbox, context };
  }
}
