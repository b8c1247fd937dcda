import { describe, expect, it } from '@jest/globals';
import type { ConfigService } from '@nestjs/config';
import type { ResolvedConfig } from '../config/config.schema.js';
import { Metrics } from '../observability/metrics.js';
import type { CaseChange } from './case-changes.js';
import { observeCaseChange } from './case-metrics.js';
import type { CaseRecord, CaseStatus, StepRunRecord } from './engine.types.js';

const config = { get: () => 'all' } as unknown as ConfigService<ResolvedConfig, true>;

const at = (seconds: number): Date => new Date(Date.UTC(2026, 0, 1, 0, 0, seconds));

function caseRecord(status: CaseStatus, submittedAt: Date | null): CaseRecord {
  return {
    id: '3f0c9a4e-0d1b-4c8e-9a57-5b2d1e0c7f11',
    subjectId: 'subject-1',
    lifeEventKey: 'move-house',
    definitionId: 'd',
    definitionVersion: 1,
    status,
    revision: 1,
    createdAt: at(0),
    updatedAt: at(0),
    submittedAt,
    finishedAt: null,
    consentChecksum: null,
    consentedAt: null,
  };
}

function step(stepId: string, overrides: Partial<StepRunRecord> = {}): StepRunRecord {
  return {
    id: `run-${stepId}`,
    caseId: 'c',
    stepId,
    agency: 'skatteverket',
    action: 'register-address',
    kind: 'automatic',
    state: 'completed',
    attempt: 1,
    maxAttempts: 3,
    disclosedFactIds: [],
    result: null,
    agencyReference: null,
    expectedDecisionAt: null,
    deadlineAt: null,
    timerArmedFor: null,
    overdue: false,
    lastError: null,
    readyAt: at(10),
    dispatchedAt: at(10),
    finishedAt: at(13),
    updatedAt: at(13),
    ...overrides,
  };
}

function change(overrides: Partial<CaseChange>): CaseChange {
  return {
    caseRecord: caseRecord('running', at(5)),
    previousStatus: 'running',
    events: [],
    steps: [],
    committedAt: at(20),
    ...overrides,
  };
}

/** The sum of a series' values whose labels include `labels` (histograms: `_sum`, `_count`). */
async function value(
  metrics: Metrics,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const family = name.replace(/_(sum|count)$/, '');
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === family);
  return (
    (metric?.values ?? [])
      // Histogram values carry the series they belong to (`_sum`, `_count`, `_bucket`).
      .filter((v) => ((v as { metricName?: string }).metricName ?? metric?.name) === name)
      .filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
      .reduce((sum, v) => sum + v.value, 0)
  );
}

const submitted = { type: 'case-submitted', data: { previewChecksum: 'x' } } as const;

describe('observeCaseChange', () => {
  it('counts a case as started when it is submitted, not when it is opened', async () => {
    const metrics = new Metrics(config);
    observeCaseChange(
      metrics,
      change({
        caseRecord: caseRecord('open', null),
        previousStatus: null,
        events: [
          { type: 'case-opened', data: { lifeEvent: 'move-house', version: 1, factKeys: [] } },
        ],
      }),
    );
    expect(await value(metrics, 'leo_cases_started_total')).toBe(0);
    observeCaseChange(metrics, change({ previousStatus: 'open', events: [submitted] }));
    expect(await value(metrics, 'leo_cases_started_total', { life_event: 'move-house' })).toBe(1);
  });

  it('counts a finish once, with its duration since submission, and only for submitted cases', async () => {
    const metrics = new Metrics(config);
    const finished = change({
      caseRecord: caseRecord('completed', at(5)),
      events: [{ type: 'case-completed' }],
    });
    observeCaseChange(metrics, finished);
    // A later change to a finished case (a late result, ignored) is no second finish.
    observeCaseChange(metrics, { ...finished, previousStatus: 'completed', events: [] });
    // An open case cancelled before it was submitted never started.
    observeCaseChange(
      metrics,
      change({
        caseRecord: caseRecord('cancelled', null),
        previousStatus: 'open',
        events: [{ type: 'case-cancelled', data: { reason: 'test', by: 'citizen' } }],
      }),
    );
    const labels = { life_event: 'move-house', outcome: 'completed' };
    expect(await value(metrics, 'leo_cases_finished_total', labels)).toBe(1);
    expect(await value(metrics, 'leo_cases_finished_total', { outcome: 'cancelled' })).toBe(0);
    expect(await value(metrics, 'leo_case_duration_seconds_sum', labels)).toBe(15);
    expect(await value(metrics, 'leo_case_duration_seconds_count', labels)).toBe(1);
  });

  it('counts a case submitted and finished in one change', async () => {
    const metrics = new Metrics(config);
    observeCaseChange(
      metrics,
      change({
        caseRecord: caseRecord('completed', null),
        previousStatus: 'open',
        events: [submitted, { type: 'case-completed' }],
      }),
    );
    expect(await value(metrics, 'leo_cases_started_total')).toBe(1);
    expect(await value(metrics, 'leo_cases_finished_total', { outcome: 'completed' })).toBe(1);
    expect(await value(metrics, 'leo_case_duration_seconds_sum')).toBe(0);
  });

  it('counts the steps the change ended, timing those that became ready', async () => {
    const metrics = new Metrics(config);
    observeCaseChange(
      metrics,
      change({
        events: [
          {
            type: 'step-completed',
            stepId: 'a',
            data: { attempt: 1, producedKeys: [], reference: null },
          },
          { type: 'step-skipped', stepId: 'b' },
          {
            type: 'step-dispatched',
            stepId: 'c',
            data: { attempt: 1, agency: 'x', factKeys: [], delayMs: 0 },
          },
          { type: 'step-failed', stepId: 'missing', data: { code: 'x', reason: 'x' } },
        ],
        steps: [
          step('a'),
          step('b', { state: 'skipped', action: 'notify', readyAt: null }),
          step('c', { state: 'dispatched', finishedAt: null }),
        ],
      }),
    );
    const completed = { agency: 'skatteverket', action: 'register-address', outcome: 'completed' };
    expect(await value(metrics, 'leo_steps_finished_total', completed)).toBe(1);
    expect(await value(metrics, 'leo_step_duration_seconds_sum', completed)).toBe(3);
    const skipped = { agency: 'skatteverket', action: 'notify', outcome: 'skipped' };
    expect(await value(metrics, 'leo_steps_finished_total', skipped)).toBe(1);
    expect(await value(metrics, 'leo_step_duration_seconds_count', skipped)).toBe(0);
    expect(await value(metrics, 'leo_steps_finished_total')).toBe(2);
  });
});
