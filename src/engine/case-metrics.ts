import { Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { Metrics, type CaseOutcome, type StepOutcomeState } from '../observability/metrics.js';
import { CaseChanges, type CaseChange } from './case-changes.js';
import { EngineRepository } from './engine.repository.js';
import { FINAL_CASE_STATUSES } from './engine.types.js';

/** The events that end a step, and the state each leaves it in. */
const STEP_ENDINGS: Readonly<Record<string, StepOutcomeState>> = {
  'step-completed': 'completed',
  'step-failed': 'failed',
  'step-skipped': 'skipped',
  'step-cancelled': 'cancelled',
};

const seconds = (from: Date, to: Date): number => Math.max(0, to.getTime() - from.getTime()) / 1000;

/**
 * Counts what one committed change did to its case and steps.
 *
 * - Started: the change submitted the case (`case-submitted`). A case opened but never submitted
 *   is not work for anyone, so it is not counted; nor is its cancellation counted as a finish,
 *   which keeps `started - finished` the number of submitted cases in flight.
 * - Finished: the status moved from unfinished into completed, failed or cancelled.
 * - A step finished: one of the change's events ended it; its agency, action and timestamps are
 *   read from the change's snapshot of the step.
 *
 * Each change is committed by exactly one process and notified there only, so summing the
 * counters over replicas counts every change once.
 */
export function observeCaseChange(metrics: Metrics, change: CaseChange): void {
  const { caseRecord, previousStatus, events, steps, committedAt } = change;
  const lifeEvent = caseRecord.lifeEventKey;
  const submittedNow = events.some((e) => e.type === 'case-submitted');
  if (submittedNow) metrics.casesStarted.inc({ life_event: lifeEvent });

  const wasFinal = previousStatus !== null && FINAL_CASE_STATUSES.includes(previousStatus);
  const submittedAt = caseRecord.submittedAt ?? (submittedNow ? committedAt : null);
  if (!wasFinal && FINAL_CASE_STATUSES.includes(caseRecord.status) && submittedAt) {
    const labels = { life_event: lifeEvent, outcome: caseRecord.status as CaseOutcome };
    metrics.casesFinished.inc(labels);
    metrics.caseDuration.observe(labels, seconds(submittedAt, committedAt));
  }

  for (const event of events) {
    if (event.type === 'step-configuration-fault') {
      const { agency, action } = event.data;
      metrics.stepConfigurationFaults.inc({ agency, action });
      continue;
    }
    const outcome = STEP_ENDINGS[event.type];
    if (!outcome || event.stepId === undefined) continue;
    const step = steps.find((s) => s.stepId === event.stepId);
    if (!step) continue;
    const labels = { agency: step.agency, action: step.action, outcome };
    metrics.stepsFinished.inc(labels);
    if (step.readyAt) {
      metrics.stepDuration.observe(labels, seconds(step.readyAt, step.finishedAt ?? committedAt));
    }
  }
}

/**
 * Feeds the case and step metrics from every change this process commits, and the sizes of its
 * batches. In the engine's folder because it reads the engine (CaseChanges, EngineRepository);
 * observability/ only owns the registry it writes to (see eslint.config.js).
 */
@Injectable()
export class CaseMetrics implements OnModuleInit, OnModuleDestroy {
  private unsubscribe: (() => void) | undefined;
  private stopBatches: (() => void) | undefined;

  constructor(
    private readonly metrics: Metrics,
    private readonly changes: CaseChanges,
    private readonly repository: EngineRepository,
  ) {}

  onModuleInit(): void {
    this.stopBatches = this.repository.observeBatches((statement, size) => {
      this.metrics.dbBatchSize.observe({ statement }, size);
    });
    this.unsubscribe = this.changes.subscribe((change) => {
      observeCaseChange(this.metrics, change);
    });
  }

  onModuleDestroy(): void {
    this.unsubscribe?.();
    this.stopBatches?.();
  }
}
