import { Injectable, Logger } from '@nestjs/common';
import type { LookupResult, StepOutcome, StepResult, FactValue } from '#agency-contract';
import {
  buildPreview,
  resolve,
  usableFacts,
  type CaseInput,
  type Preview,
  type Refusal,
  type Resolution,
} from '#case-machine';
import type { FactValidator } from '#facts';
import type { Catalogue, DefinitionWithDefaults } from '#workflow';
import { DomainError } from '../common/domain-error.js';
import { LogBudget } from '../common/log-budget.js';
import { uuidv7 } from '../common/uuid.js';
import { CaseRunner } from './case-runner.js';
import { CaseRouter, type CaseAddress, type Outcome } from './case-router.js';
import { EngineCatalogue } from './engine-catalogue.js';
import type { StepDeadlineJob } from './engine.jobs.js';
import { EngineRepository } from './engine.repository.js';
import type { CaseRecord, FactRecord, StepRunRecord } from './engine.types.js';
import { Metrics } from '../observability/metrics.js';

/** The case machine's reason for ignoring an answer to a step or look-up of another agency. */
const FROM_ANOTHER_AGENCY = 'from another agency';

/**
 * Runs cases. What happens to a case is decided by the case machine (libs/case-machine); this
 * service turns requests, results and timers into its inputs, runs them through the CaseRunner
 * (one turn per input, one write per change: docs/decisions/0017-case-machine.md) and maps
 * what comes out to answers and errors.
 */
@Injectable()
export class EngineService {
  private readonly logger = new Logger(EngineService.name);
  /** Answers for another agency's steps: each counted, at most 10 a minute per agency logged. */
  private readonly foreignAnswers = new LogBudget(10, 60_000);

  constructor(
    private readonly repository: EngineRepository,
    private readonly router: CaseRouter,
    private readonly runner: CaseRunner,
    private readonly definitions: EngineCatalogue,
    private readonly metrics: Metrics,
  ) {}

  catalogue(): Promise<{ catalogue: Catalogue; validator: FactValidator }> {
    return this.definitions.catalogue();
  }

  definition(definitionId: string): Promise<DefinitionWithDefaults> {
    return this.definitions.definition(definitionId);
  }

  publishedDefinitions(): Promise<DefinitionWithDefaults[]> {
    return this.definitions.publishedDefinitions();
  }

  /** Whether a case waits for a look-up (the owner's copy when this process owns it). */
  async hasPendingLookups(caseId: string): Promise<boolean> {
    return this.runner.lookupsPending(caseId) ?? (await this.repository.hasPendingLookups(caseId));
  }

  // ---- opening, answering, submitting ---------------------------------------------------

  /**
   * Opens a case on the current published version of a life event for a subject, with the
   * personal identity number from their e-identification and any answers they gave, resolving
   * what it needs (usable records reused, register facts looked up, the rest left to ask).
   * Invalid answers are a 400 naming each field, and nothing is stored.
   */
  async openCase(input: {
    subjectId: string;
    lifeEventKey: string;
    personalNumber: string;
    answers: Record<string, unknown>;
    /** The case's id when the caller chose it (an idempotency key's), else a new one. */
    caseId?: string;
  }): Promise<CaseRecord> {
    const row = await this.definitions.currentVersion(input.lifeEventKey);
    if (!row) {
      throw new DomainError(
        'not-found',
        'life-event-not-found',
        `No published life event ${input.lifeEventKey}.`,
      );
    }
    const done = await this.router.open({
      type: 'open',
      caseId: input.caseId ?? uuidv7(),
      subjectId: input.subjectId,
      definitionId: row.id,
      definitionVersion: row.version,
      personalNumber: input.personalNumber,
      answers: input.answers,
    });
    return changed(done).caseRecord;
  }

  /** The citizen's answers to an open case (another citizen's case is not found). */
  async answer(caseId: string, subjectId: string, answers: Record<string, unknown>): Promise<void> {
    changed(await this.router.run({ caseId }, { type: 'answer', answers }, { subjectId }));
  }

  /** What the case still needs, and (once nothing is missing) its preview: for reads. */
  async resolution(caseId: string): Promise<{
    caseRecord: CaseRecord;
    runs: StepRunRecord[];
    facts: Map<string, FactRecord>;
    resolution: Resolution;
    preview: Preview | undefined;
  }> {
    // The owner's copy when this process owns the case (no read of the case), else Postgres.
    const loaded =
      (await this.runner.current(caseId)) ?? (await this.repository.loadCase({ caseId }));
    if (!loaded) throw new DomainError('not-found', 'case-not-found', 'No such case.');
    const { caseRecord, lookups, runs } = loaded;
    const definition = await this.definitions.definition(caseRecord.definitionId);
    const { catalogue } = await this.definitions.catalogue();
    const facts = usableFacts(loaded.facts.values(), catalogue, caseId, Date.now());
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
   * was shown. Its first steps are dispatched in the same write. The same consent again, once
   * submitted, is accepted and changes nothing (a retry whose answer was lost).
   */
  async submitCase(
    caseId: string,
    consent: { previewChecksum: string; subjectId?: string },
  ): Promise<void> {
    const done = await this.router.run(
      { caseId },
      { type: 'submit', previewChecksum: consent.previewChecksum },
      consent.subjectId === undefined ? {} : { subjectId: consent.subjectId },
    );
    // Submitted before with this very consent (a retry): done, as the first time.
    if (done.outcome === 'unchanged' && done.reason === 'already-submitted') return;
    changed(done);
  }

  // ---- results --------------------------------------------------------------------------

  /** Applies an agency's answer to a look-up, once (a duplicate or stale one changes nothing). */
  applyLookupResult(result: LookupResult): Promise<'applied' | 'ignored'> {
    return this.applyAnswer(
      { lookupId: result.lookupId },
      { type: 'lookup-result', result },
      {
        lookupId: result.lookupId,
        attempt: result.attempt,
        agency: result.agency,
        outcome: result.result.outcome,
      },
    );
  }

  /**
   * Applies one agency result, exactly once: a result for another agency, another attempt, a
   * step that has moved on, or a finished case changes nothing (a re-delivered result is normal
   * under at-least-once delivery).
   */
  applyResult(result: StepResult): Promise<'applied' | 'ignored'> {
    return this.applyAnswer(
      { stepRunId: result.stepRunId },
      { type: 'step-result', result },
      {
        stepRunId: result.stepRunId,
        attempt: result.attempt,
        agency: result.agency,
        outcome: result.result.outcome,
      },
    );
  }

  private async applyAnswer(
    address: CaseAddress,
    input: CaseInput,
    ids: Record<string, unknown> & { agency: string },
  ): Promise<'applied' | 'ignored'> {
    const done = await this.router.run(address, input);
    switch (done.outcome) {
      case 'changed':
        return 'applied';
      case 'not-found':
        this.logger.warn(ids, 'result for an unknown case ignored');
        return 'ignored';
      case 'unchanged':
        if (done.reason === FROM_ANOTHER_AGENCY) {
          // An agency answering a step or look-up of another's: refused, and an operator sees it.
          this.metrics.agencyAnswersRefused.inc({ agency: ids.agency, reason: 'another-agency' });
          const { log, held } = this.foreignAnswers.take(ids.agency);
          if (log) {
            this.logger.warn(
              { ...ids, caseId: done.caseId, alsoRefused: held },
              "answer for another agency's step or look-up refused",
            );
          }
          return 'ignored';
        }
        this.logger.log({ ...ids, caseId: done.caseId, why: done.reason }, 'result ignored');
        return 'ignored';
      case 'refused':
        throw toError(done.refusal);
    }
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
    const done = await this.router.run(
      { stepRunId },
      { type: 'decision', agency, stepRunId, decision },
    );
    if (done.outcome === 'not-found') {
      throw new DomainError('not-found', 'step-not-found', 'No step of yours with that id.');
    }
    changed(done);
  }

  // ---- citizens and administrators ------------------------------------------------------

  /**
   * Cancels a case, by an administrator or by its citizen (`subjectId`: another's case is not
   * found): nothing more starts; adapters working on its steps are told to stop.
   */
  async cancelCase(
    caseId: string,
    reason: string,
    by: { role: 'admin'; actor: string } | { role: 'citizen'; subjectId: string },
  ): Promise<void> {
    changed(
      await this.router.run(
        { caseId },
        {
          type: 'cancel',
          reason,
          by: by.role,
          ...(by.role === 'admin' ? { actor: by.actor } : {}),
        },
        by.role === 'citizen' ? { subjectId: by.subjectId } : {},
      ),
    );
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
    changed(
      await this.router.run(
        { caseId },
        { type: 'task-completed', stepId, produced },
        { subjectId },
      ),
    );
  }

  /** Gives a failed step a fresh set of attempts and resumes its case. */
  /** Retries a failed step for administrator `actor` (their subject, kept in the history). */
  async retryStep(caseId: string, stepId: string, actor: string): Promise<void> {
    changed(await this.router.run({ caseId }, { type: 'retry-step', stepId, actor }));
  }

  // ---- deadlines ------------------------------------------------------------------------

  /**
   * A step's deadline timer fired: the step, if still open with that deadline, is escalated.
   * A timer for a step that finished, or whose deadline moved, changes nothing.
   */
  async stepDeadlinePassed(job: StepDeadlineJob): Promise<'escalated' | 'ignored'> {
    const done = await this.router.run(
      { stepRunId: job.stepRunId },
      { type: 'timer-fired', stepRunId: job.stepRunId, deadline: job.deadline },
    );
    return done.outcome === 'changed' ? 'escalated' : 'ignored';
  }

  /**
   * The safety net of deadline timers (lost with Redis' data): escalates every open step past
   * its deadline that has not been escalated yet (of the cases of `partitions`: the engine's own).
   */
  /**
   * Sends the steps that waited for their agency's instance (a municipality not onboarded) once
   * it is onboarded (of the cases of `partitions`: the engine's own). Returns how many cases moved.
   */
  async releaseHeld(limit = 100, partitions?: readonly number[]): Promise<number> {
    let released = 0;
    for (const caseId of await this.repository.casesWithHeldSteps(limit, partitions)) {
      const done = await this.router.run({ caseId }, { type: 'route-held' });
      if (done.outcome === 'changed') released += 1;
    }
    if (released > 0)
      this.logger.log({ cases: released }, 'steps sent to newly onboarded agencies');
    return released;
  }

  async escalateOverdue(limit = 100, partitions?: readonly number[]): Promise<number> {
    let escalated = 0;
    for (const caseId of await this.repository.casesWithOverdueSteps(limit, partitions)) {
      const done = await this.router.run({ caseId }, { type: 'escalate-overdue' });
      if (done.outcome === 'changed') escalated += done.overdueSteps;
    }
    if (escalated > 0) {
      this.logger.warn({ steps: escalated }, 'steps past their deadline escalated');
    }
    return escalated;
  }
}

/** The change an input made; a case not found or a refusal is thrown as a DomainError. */
function changed(done: Outcome): Extract<Outcome, { outcome: 'changed' }> {
  switch (done.outcome) {
    case 'changed':
      return done;
    case 'not-found':
      throw new DomainError('not-found', 'case-not-found', 'No such case.');
    case 'refused':
      throw toError(done.refusal);
    case 'unchanged':
      throw new Error(`the input changed nothing: ${done.reason}`);
  }
}

function toError(refusal: Refusal): DomainError {
  return new DomainError(refusal.kind, refusal.code, refusal.message, refusal.problems ?? []);
}
