import { Injectable, Logger } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import {
  STEP_CANCEL,
  STEP_EXECUTE,
  agencyQueueName,
  stepJobId,
  type FactValue,
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
import { DefinitionsRepository } from '../definitions/definitions.repository.js';
import { EngineRepository } from './engine.repository.js';
import {
  FINAL_CASE_STATUSES,
  FINAL_STEP_STATES,
  type CaseEvent,
  type CaseRecord,
  type FactRecord,
  type OutboxMessage,
  type StepRunRecord,
} from './engine.types.js';
import { CaseChanges } from './case-changes.js';
import { OutboxRelay } from './outbox.relay.js';

const CATALOGUE_TTL_MS = 5_000;

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
  manager: EntityManager;
  catalogue: Catalogue;
  validator: FactValidator;
  caseRecord: CaseRecord;
  definition: DefinitionWithDefaults;
  runs: Map<string, StepRunRecord>;
  events: CaseEvent[];
  outbox: OutboxMessage[];
}

/**
 * Runs cases: creates them pinned to a published version, dispatches ready steps through the
 * outbox, applies each agency result exactly once, retries, fails, cancels. Every change to a
 * case is one transaction holding the case's row lock, with its events and outbox rows.
 */
@Injectable()
export class EngineService {
  private readonly logger = new Logger(EngineService.name);
  private readonly definitions = new Map<string, DefinitionWithDefaults>();
  private catalogueCache:
    { at: number; catalogue: Catalogue; validator: FactValidator } | undefined;

  constructor(
    private readonly repository: EngineRepository,
    private readonly definitionsRepository: DefinitionsRepository,
    private readonly relay: OutboxRelay,
    private readonly changes: CaseChanges,
  ) {}

  private async catalogue(): Promise<{ catalogue: Catalogue; validator: FactValidator }> {
    if (!this.catalogueCache || Date.now() - this.catalogueCache.at > CATALOGUE_TTL_MS) {
      const catalogue = await this.definitionsRepository.loadCatalogue();
      this.catalogueCache = {
        at: Date.now(),
        catalogue,
        validator: createFactValidator([...catalogue.facts.values()]),
      };
    }
    return this.catalogueCache;
  }

  /** Published versions never change, so each is read once per process. */
  private async definition(definitionId: string): Promise<DefinitionWithDefaults> {
    let definition = this.definitions.get(definitionId);
    if (!definition) {
      const row = await this.definitionsRepository.findById(definitionId);
      if (!row) throw new Error(`definition ${definitionId} is missing`);
      definition = withDefaults(row.body);
      this.definitions.set(definitionId, definition);
    }
    return definition;
  }

  // ---- starting a case ------------------------------------------------------------------

  /**
   * Opens a case on the current published version of a life event, recording the facts the
   * citizen gave. Each value is validated against the catalogue; any problem is a 400 naming the
   * fact and the place within its value, and nothing is stored.
   */
  async startCase(input: {
    subjectId: string;
    lifeEventKey: string;
    facts: Record<string, unknown>;
  }): Promise<CaseRecord> {
    const row = await this.definitionsRepository.findCurrent(input.lifeEventKey);
    if (!row) {
      throw new DomainError(
        'not-found',
        'life-event-not-found',
        `No published life event ${input.lifeEventKey}.`,
      );
    }
    const definition = withDefaults(row.body);
    const { catalogue, validator } = await this.catalogue();
    const problems: FieldProblem[] = [];
    const normalised: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(input.facts)) {
      const fact = catalogue.facts.get(key);
      if (!definition.inputs.includes(key) || !fact || fact.source.kind === 'produced') {
        problems.push({
          path: `facts.${key}`,
          reason: `is not something ${definition.key} asks for`,
          code: 'unexpected-fact',
        });
        continue;
      }
      const issues = validator.validate(key, value);
      problems.push(
        ...issues.map((i) => ({
          path: `facts.${key}${i.path}`,
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
        `The case has ${problems.length} invalid fact(s).`,
        problems,
      );
    }
    const opened = await this.repository.transaction(async (manager) => {
      const caseRecord = await this.repository.insertCase(manager, {
        subjectId: input.subjectId,
        lifeEventKey: definition.key,
        definitionId: row.id,
        definitionVersion: row.version,
      });
      await this.repository.insertStepRuns(
        manager,
        caseRecord.id,
        definition.steps.map((s) => ({
          stepId: s.id,
          agency: s.agency,
          action: s.action,
          kind: s.kind,
          maxAttempts: s.retry.attempts,
        })),
      );
      await this.repository.insertFacts(
        manager,
        Object.entries(normalised).map(([factKey, value]) => ({
          subjectId: input.subjectId,
          factKey,
          value,
          source: 'citizen' as const,
          caseId: caseRecord.id,
        })),
      );
      const events: CaseEvent[] = [
        {
          type: 'case-opened',
          data: {
            lifeEvent: definition.key,
            version: row.version,
            factKeys: Object.keys(normalised),
          },
        },
      ];
      await this.repository.appendEvents(manager, caseRecord, events);
      this.definitions.set(row.id, definition);
      return {
        caseRecord,
        events,
        steps: await this.repository.stepRuns(caseRecord.id, manager),
      };
    });
    this.changes.emit({ ...opened, previousStatus: null, committedAt: new Date() });
    return opened.caseRecord;
  }

  /** Submits an open case: its first steps are planned and dispatched in the same transaction. */
  async submitCase(caseId: string): Promise<void> {
    const outbox = await this.inCase(caseId, async (context) => {
      if (context.caseRecord.status !== 'open') {
        throw new DomainError(
          'conflict',
          'case-not-open',
          `The case is ${context.caseRecord.status}, not open.`,
        );
      }
      await this.repository.setCaseStatus(context.manager, caseId, 'running', true);
      context.caseRecord.status = 'running';
      context.events.push({ type: 'case-submitted' });
      await this.advance(context);
    });
    await this.relay.publish(outbox);
  }

  // ---- results --------------------------------------------------------------------------

  /**
   * Applies one agency result, exactly once: a result for another agency, another attempt, a
   * step that has moved on, or a finished case changes nothing (a re-delivered result is normal
   * under at-least-once delivery).
   */
  async applyResult(result: StepResult): Promise<'applied' | 'ignored'> {
    const caseId = await this.repository.caseIdOfStepRun(result.stepRunId);
    if (!caseId) {
      this.logger.warn({ stepRunId: result.stepRunId }, 'result for an unknown step run ignored');
      return 'ignored';
    }
    const state = { applied: false };
    const outbox = await this.inCase(caseId, async (context) => {
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
      await this.applyOutcome(context, run, step, result);
      if (context.caseRecord.status === 'running') await this.advance(context);
    });
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
    const caseId = await this.repository.caseIdOfStepRun(stepRunId);
    const notFound = new DomainError(
      'not-found',
      'step-not-found',
      'No step of yours with that id.',
    );
    if (!caseId) throw notFound;
    const outbox = await this.inCase(caseId, async (context) => {
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
      await this.applyOutcome(context, run, step, {
        stepRunId,
        attempt: run.attempt,
        agency,
        result: decision,
        reportedAt: new Date().toISOString(),
      });
      if (context.caseRecord.status === 'running') await this.advance(context);
    });
    await this.relay.publish(outbox);
  }

  private async applyOutcome(
    context: Context,
    run: StepRunRecord,
    step: StepWithDefaults,
    result: StepResult,
  ): Promise<void> {
    const { manager } = context;
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
          await this.failStep(
            context,
            run,
            step,
            'invalid-result',
            'The agency answered with facts the step may not set, or invalid values.',
          );
          return;
        }
        await this.repository.insertFacts(
          manager,
          Object.entries(outcome.produced).map(([factKey, value]) => ({
            subjectId: context.caseRecord.subjectId,
            factKey,
            value,
            source: 'agency' as const,
            agency: run.agency,
            caseId: run.caseId,
            stepRunId: run.id,
          })),
        );
        await this.setRun(context, run, {
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
        return;
      }
      case 'pending':
        await this.setRun(context, run, {
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
        await this.failStep(context, run, step, outcome.code, outcome.reason);
        return;
      case 'retryable-error':
        if (run.attempt < run.maxAttempts) {
          const delayMs = backoffDelayMs(step, run.attempt + 1);
          context.events.push({
            type: 'step-retry-scheduled',
            stepId: run.stepId,
            data: { code: outcome.code, attempt: run.attempt + 1, delayMs },
          });
          await this.dispatch(context, run, step, run.attempt + 1, delayMs, outcome.code);
        } else {
          context.events.push({
            type: 'step-attempts-exhausted',
            stepId: run.stepId,
            data: { code: outcome.code },
          });
          await this.failStep(context, run, step, 'attempts-exhausted', outcome.reason);
        }
        return;
    }
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

  private async failStep(
    context: Context,
    run: StepRunRecord,
    step: StepWithDefaults,
    code: string,
    reason: string,
  ): Promise<void> {
    await this.setRun(context, run, {
      state: 'failed',
      lastError: code,
      result: { outcome: 'failed', code },
    });
    context.events.push({ type: 'step-failed', stepId: run.stepId, data: { code, reason } });
    if (step.onFailure === 'fail-case') {
      await this.finishCase(context, 'failed');
      await this.cancelRemaining(context, 'case failed');
    } else {
      await this.repository.setCaseStatus(
        context.manager,
        context.caseRecord.id,
        'action-required',
      );
      context.caseRecord.status = 'action-required';
      context.events.push({ type: 'case-action-required', stepId: run.stepId, data: { code } });
    }
  }

  // ---- administration -------------------------------------------------------------------

  /** Cancels a case: nothing more starts; adapters working on its steps are told to stop. */
  async cancelCase(caseId: string, reason: string): Promise<void> {
    const outbox = await this.inCase(caseId, async (context) => {
      if (FINAL_CASE_STATUSES.includes(context.caseRecord.status)) {
        throw new DomainError(
          'conflict',
          'case-finished',
          `The case is already ${context.caseRecord.status}.`,
        );
      }
      await this.cancelRemaining(context, reason);
      await this.finishCase(context, 'cancelled');
      context.events.push({ type: 'case-cancelled', data: { reason } });
    });
    await this.relay.publish(outbox);
  }

  /** Gives a failed step a fresh set of attempts and resumes its case. */
  async retryStep(caseId: string, stepId: string): Promise<void> {
    const outbox = await this.inCase(caseId, async (context) => {
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
      await this.repository.setCaseStatus(context.manager, caseId, 'running');
      context.caseRecord.status = 'running';
      context.events.push({ type: 'step-retried-by-admin', stepId });
      await this.repository.updateStepRun(context.manager, run.id, {
        maxAttempts: run.attempt + step.retry.attempts,
      });
      run.maxAttempts = run.attempt + step.retry.attempts;
      await this.dispatch(context, run, step, run.attempt + 1, 0, null);
      await this.advance(context);
    });
    await this.relay.publish(outbox);
  }

  /**
   * Escalates steps past their deadline: marked overdue (shown to administrators), with an event
   * in the case history. Never dropped: the step keeps waiting for its answer.
   */
  async escalateOverdue(limit = 100): Promise<number> {
    let escalated = 0;
    for (const caseId of await this.repository.casesWithOverdueSteps(limit)) {
      await this.inCase(caseId, async (context) => {
        const now = Date.now();
        for (const run of context.runs.values()) {
          const open = ['ready', 'dispatched', 'awaiting-decision', 'awaiting-citizen'].includes(
            run.state,
          );
          if (!open || run.overdue || !run.deadlineAt || run.deadlineAt.getTime() >= now) continue;
          await this.setRun(context, run, { overdue: true });
          context.events.push({
            type: 'step-overdue',
            stepId: run.stepId,
            data: { deadline: run.deadlineAt.toISOString(), state: run.state, agency: run.agency },
          });
          escalated += 1;
        }
      });
    }
    if (escalated > 0)
      this.logger.warn({ steps: escalated }, 'steps past their deadline escalated');
    return escalated;
  }

  private async cancelRemaining(context: Context, reason: string): Promise<void> {
    for (const run of context.runs.values()) {
      if (FINAL_STEP_STATES.includes(run.state)) continue;
      const inFlight = ['dispatched', 'awaiting-decision'].includes(run.state);
      await this.setRun(context, run, { state: 'cancelled' });
      context.events.push({ type: 'step-cancelled', stepId: run.stepId, data: { inFlight } });
      if (inFlight || run.state === 'ready') {
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

  private async finishCase(
    context: Context,
    status: 'completed' | 'failed' | 'cancelled',
  ): Promise<void> {
    await this.repository.setCaseStatus(context.manager, context.caseRecord.id, status);
    context.caseRecord.status = status;
  }

  // ---- planning and dispatch ------------------------------------------------------------

  /**
   * Runs the planner until nothing changes: skips what its condition rules out, dispatches what
   * is ready (or hands it to the citizen), and completes the case when every step is final.
   */
  private async advance(context: Context): Promise<void> {
    const { catalogue } = context;
    let facts = await this.repository.currentFacts(context.caseRecord.subjectId, context.manager);
    for (;;) {
      const known = Object.fromEntries([...facts.entries()].map(([k, r]) => [k, r.value]));
      const states = Object.fromEntries([...context.runs.values()].map((r) => [r.stepId, r.state]));
      const planned = plan(context.definition, known, states, catalogue);
      let changed = false;
      for (const p of planned.steps) {
        const run = context.runs.get(p.id);
        const step = context.definition.steps.find((s) => s.id === p.id);
        if (!run || !step || run.state !== 'pending') continue;
        if (p.status === 'skipped') {
          await this.setRun(context, run, { state: 'skipped' });
          context.events.push({ type: 'step-skipped', stepId: run.stepId });
          changed = true;
        } else if (p.status === 'ready') {
          if (step.kind === 'citizen-task') {
            await this.setRun(context, run, { state: 'awaiting-citizen' });
            context.events.push({ type: 'step-awaiting-citizen', stepId: run.stepId });
          } else {
            await this.dispatch(context, run, step, 1, 0, null, facts);
          }
          changed = true;
        }
      }
      if (!changed) break;
      facts = await this.repository.currentFacts(context.caseRecord.subjectId, context.manager);
    }
    const runs = [...context.runs.values()];
    if (
      context.caseRecord.status === 'running' &&
      runs.every((r) => FINAL_STEP_STATES.includes(r.state))
    ) {
      const failed = runs.some((r) => r.state === 'failed');
      if (!failed) {
        await this.finishCase(context, 'completed');
        context.events.push({ type: 'case-completed' });
      }
    }
  }

  /**
   * Hands one attempt of a step to its agency: the job carries exactly the step's `needs`, and
   * the sharing is logged as a disclosure in the same transaction (invariants 4 and 5).
   */
  private async dispatch(
    context: Context,
    run: StepRunRecord,
    step: StepWithDefaults,
    attempt: number,
    delayMs: number,
    previousError: string | null,
    currentFacts?: Map<string, FactRecord>,
  ): Promise<void> {
    const facts =
      currentFacts ??
      (await this.repository.currentFacts(context.caseRecord.subjectId, context.manager));
    const records = step.needs.map((key) => {
      const record = facts.get(key);
      if (!record) throw new Error(`step ${step.id} is ready but fact ${key} is missing`);
      return record;
    });
    const deadlineDuration = step.deadline ? parseIsoDuration(step.deadline) : undefined;
    const deadlineAt = deadlineDuration
      ? new Date(Date.now() + delayMs + nominalDurationMs(deadlineDuration))
      : null;
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
    await this.repository.insertDisclosure(context.manager, {
      subjectId: context.caseRecord.subjectId,
      caseId: run.caseId,
      stepRunId: run.id,
      agency: step.agency,
      factRecordIds: records.map((r) => r.id),
      factKeys: step.needs,
      basis: `case-submission:${run.caseId}`,
    });
    await this.setRun(context, run, {
      state: 'ready',
      attempt,
      disclosedFactIds: records.map((r) => r.id),
      deadlineAt,
      lastError: previousError,
    });
    context.events.push({
      type: 'step-dispatched',
      stepId: step.id,
      data: { attempt, agency: step.agency, factKeys: step.needs, delayMs },
    });
  }

  private async setRun(
    context: Context,
    run: StepRunRecord,
    change: Parameters<EngineRepository['updateStepRun']>[2],
  ): Promise<void> {
    await this.repository.updateStepRun(context.manager, run.id, change);
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

  /** One transaction on one case, holding its row lock; returns the outbox rows to publish. */
  private async inCase(
    caseId: string,
    work: (context: Context) => Promise<void>,
  ): Promise<Array<{ id: string } & OutboxMessage>> {
    // Everything read from outside the transaction is read before it opens: a transaction must
    // never wait for a second pooled connection while holding its first (the pool could run dry).
    const unlocked = await this.repository.findCase(caseId);
    if (!unlocked) throw new DomainError('not-found', 'case-not-found', 'No such case.');
    const definition = await this.definition(unlocked.definitionId);
    const { catalogue, validator } = await this.catalogue();
    const committed = await this.repository.transaction(async (manager) => {
      const caseRecord = await this.repository.lockCase(manager, caseId);
      if (!caseRecord) throw new DomainError('not-found', 'case-not-found', 'No such case.');
      const previousStatus = caseRecord.status;
      const runs = await this.repository.stepRuns(caseId, manager);
      const context: Context = {
        manager,
        catalogue,
        validator,
        caseRecord,
        definition,
        runs: new Map(runs.map((r) => [r.stepId, r])),
        events: [],
        outbox: [],
      };
      await work(context);
      await this.repository.appendEvents(manager, caseRecord, context.events);
      const outbox = await this.repository.insertOutbox(manager, context.outbox);
      return { outbox, context, previousStatus };
    });
    const { context, previousStatus, outbox } = committed;
    if (context.events.length > 0) {
      this.changes.emit({
        caseRecord: context.caseRecord,
        previousStatus,
        events: context.events,
        steps: [...context.runs.values()],
        committedAt: new Date(),
      });
    }
    return outbox;
  }
}
