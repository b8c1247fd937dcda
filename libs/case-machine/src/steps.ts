import {
  lookupJobId,
  stepJobId,
  type FactValue,
  type LookupJob,
  type StepCancelJob,
  type StepJob,
} from '#agency-contract';
import {
  nominalDurationMs,
  parseIsoDuration,
  plan,
  type DefinitionWithDefaults,
  type StepWithDefaults,
} from '#workflow';
import type { Draft } from './draft.js';
import {
  FINAL_CASE_STATUSES,
  FINAL_STEP_STATES,
  OPEN_STEP_STATES,
  type FactRecord,
  type LookupRecord,
  type StepRunRecord,
} from './records.js';
import { IDENTITY_FACT, known, resolve, usableFacts } from './resolution.js';
import { destinationOf, holdNotOnboarded, isHeldNotOnboarded } from './routing.js';
import { deadlineJobId } from './types.js';

/**
 * What happens next in a case: planning, dispatch with exactly a step's needs, look-ups,
 * deadlines, failure, cancellation and completion. Each function changes a draft.
 */

/** The delay before retry `attempt` (2 = first retry): exponential, capped, with jitter. */
export function backoffDelayMs(step: StepWithDefaults, attempt: number, random: number): number {
  const { initialDelayMs, maxDelayMs, multiplier, jitter } = step.retry.backoff;
  const base = Math.min(maxDelayMs, initialDelayMs * multiplier ** Math.max(0, attempt - 2));
  return Math.round(base * (1 - jitter * random));
}

/** The delay before look-up attempt `attempt + 1`: exponential from half a second, capped. */
export function lookupBackoffMs(attempt: number, random: number): number {
  return Math.round(Math.min(60_000, 500 * 2 ** (attempt - 1)) * (1 - 0.2 * random));
}

/**
 * Looks up, from their authoritative agencies, the facts the case needs that no usable record
 * holds and that were not asked of that agency in this case yet: one look-up per agency, whose
 * job carries only the identity number (disclosed like any sharing).
 */
export function resolveCase(draft: Draft): void {
  const facts = draft.usable();
  const { toLookUp } = resolve({
    definition: draft.env.definition,
    catalogue: draft.env.catalogue,
    facts,
    lookups: draft.lookups,
    states: draft.states(),
  });
  for (const [agency, factKeys] of toLookUp) {
    dispatchLookup(draft, draft.addLookup(agency, factKeys), 1, 0, facts);
  }
}

export function dispatchLookup(
  draft: Draft,
  lookup: LookupRecord,
  attempt: number,
  delayMs: number,
  facts: ReadonlyMap<string, FactRecord> = draft.usable(),
): void {
  const identity = facts.get(IDENTITY_FACT);
  if (!identity) throw new Error(`case ${draft.caseRecord.id} has no identity to look up by`);
  const job: LookupJob = {
    caseId: draft.caseRecord.id,
    lookupId: lookup.id,
    attempt,
    idempotencyKey: lookup.id,
    facts: { [IDENTITY_FACT]: identity.value as FactValue },
    factKeys: lookup.factKeys,
  };
  draft.effect({
    type: 'request-lookup',
    agency: lookup.agency,
    jobId: lookupJobId(lookup.id, attempt),
    job,
    availableAt: new Date(draft.now.getTime() + delayMs),
  });
  draft.effect({
    type: 'disclose',
    disclosure: {
      subjectId: draft.caseRecord.subjectId,
      caseId: draft.caseRecord.id,
      lookupId: lookup.id,
      agency: lookup.agency,
      factRecordIds: [identity.id],
      factKeys: [IDENTITY_FACT],
      basis: 'lookup',
    },
  });
  draft.changeLookup(lookup, { attempt, disclosedFactIds: [identity.id] });
  draft.event({
    type: 'lookup-requested',
    data: { agency: lookup.agency, factKeys: lookup.factKeys, attempt, delayMs },
  });
}

/**
 * Runs the planner until nothing changes: skips what its condition rules out, dispatches what
 * is ready (or hands it to the citizen), and completes the case when every step is final.
 */
export function advance(draft: Draft): void {
  const { definition, catalogue } = draft.env;
  let facts = draft.usable();
  for (;;) {
    const planned = plan(definition, known(facts), draft.states(), catalogue);
    let changed = false;
    for (const p of planned.steps) {
      const run = draft.runs.get(p.id);
      const step = draft.step(p.id);
      if (!run || !step || run.state !== 'pending') continue;
      if (p.status === 'skipped') {
        draft.setRun(run, { state: 'skipped' });
        draft.event({ type: 'step-skipped', stepId: run.stepId });
        changed = true;
      } else if (p.status === 'ready') {
        if (step.kind === 'citizen-task') awaitCitizen(draft, run, step);
        else dispatch(draft, run, step, { attempt: 1, delayMs: 0, previousError: null }, facts);
        changed = true;
      }
    }
    if (!changed) break;
    facts = draft.usable();
  }
  const runs = [...draft.runs.values()];
  if (
    draft.caseRecord.status === 'running' &&
    runs.every((r) => FINAL_STEP_STATES.includes(r.state)) &&
    !runs.some((r) => r.state === 'failed')
  ) {
    draft.setStatus('completed');
    draft.event({ type: 'case-completed' });
    draft.notify('leo', 'notice', 'case-completed');
    tellFewerAnswers(draft);
  }
}

/** A citizen task became due: the case waits for the citizen, who is told, until its deadline. */
function awaitCitizen(draft: Draft, run: StepRunRecord, step: StepWithDefaults): void {
  const deadlineAt = deadlineFrom(draft, step, 0);
  draft.setRun(run, { state: 'awaiting-citizen', deadlineAt });
  if (deadlineAt) setTimer(draft, run, deadlineAt);
  draft.event({ type: 'step-awaiting-citizen', stepId: run.stepId });
  draft.notify(step.agency, 'request', 'task-waiting', {
    stepId: run.stepId,
    action: run.action,
    deadline: deadlineAt?.toISOString() ?? null,
  });
}

/**
 * Hands one attempt of a step to its agency: the job carries exactly the step's `needs`, and
 * the sharing is a disclosure written with it (invariants 4 and 5). The deadline runs from the
 * first attempt (retries do not extend it) unless `freshDeadline`.
 */
export function dispatch(
  draft: Draft,
  run: StepRunRecord,
  step: StepWithDefaults,
  how: { attempt: number; delayMs: number; previousError: string | null; freshDeadline?: boolean },
  facts: ReadonlyMap<string, FactRecord> = draft.usable(),
): void {
  const { attempt, delayMs, previousError } = how;
  const records = step.needs.map((key) => {
    const record = facts.get(key);
    if (!record) throw new Error(`step ${step.id} is ready but fact ${key} is missing`);
    return record;
  });
  // A step released after waiting for its instance keeps the deadline it had while it waited.
  const keep =
    run.deadlineAt !== null &&
    (attempt > 1 || isHeldNotOnboarded(run)) &&
    how.freshDeadline !== true;
  const deadlineAt = keep ? run.deadlineAt : deadlineFrom(draft, step, delayMs);
  const destination = destinationOf(draft, run, step, facts);
  if (!destination.onboarded) {
    if (deadlineAt && !keep) setTimer(draft, run, deadlineAt);
    holdNotOnboarded(draft, run, step, { attempt, code: destination.code, deadlineAt });
    return;
  }
  const agency = destination.code;
  if (agency !== run.agency) draft.setRun(run, { agency });
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
  draft.effect({
    type: 'dispatch-step',
    agency,
    jobId: stepJobId(run.id, attempt),
    job,
    availableAt: new Date(draft.now.getTime() + delayMs),
  });
  if (deadlineAt && !keep) setTimer(draft, run, deadlineAt);
  draft.effect({
    type: 'disclose',
    disclosure: {
      subjectId: draft.caseRecord.subjectId,
      caseId: run.caseId,
      stepRunId: run.id,
      agency,
      factRecordIds: records.map((r) => r.id),
      factKeys: step.needs,
      basis: 'consent',
    },
  });
  draft.setRun(run, {
    state: 'ready',
    attempt,
    disclosedFactIds: records.map((r) => r.id),
    deadlineAt,
    lastError: previousError,
    ...(keep ? {} : { overdue: false }),
  });
  draft.event({
    type: 'step-dispatched',
    stepId: step.id,
    data: { attempt, agency, factKeys: step.needs, delayMs },
  });
}

function deadlineFrom(draft: Draft, step: StepWithDefaults, delayMs: number): Date | null {
  const duration = step.deadline ? parseIsoDuration(step.deadline) : undefined;
  return duration ? new Date(draft.now.getTime() + delayMs + nominalDurationMs(duration)) : null;
}

/**
 * The timer that escalates the step when its deadline passes, armed now if the deadline could
 * pass before the arming sweep would arm it (decision 0015); otherwise left to the sweep, so a
 * step answered within minutes, as most are, never leaves a timer for the weeks until then.
 */
function setTimer(draft: Draft, run: StepRunRecord, deadlineAt: Date): void {
  const { armAfterMs, sweepIntervalMs } = draft.env.timers;
  const armedBySweepBy = draft.now.getTime() + armAfterMs + 2 * sweepIntervalMs;
  if (armAfterMs > 0 && deadlineAt.getTime() > armedBySweepBy) return;
  draft.effect({
    type: 'arm-timer',
    jobId: deadlineJobId(run.id, deadlineAt),
    job: { caseId: run.caseId, stepRunId: run.id, deadline: deadlineAt.toISOString() },
    at: deadlineAt,
  });
  draft.setRun(run, { timerArmedFor: deadlineAt });
}

export function failStep(
  draft: Draft,
  run: StepRunRecord,
  step: StepWithDefaults,
  code: string,
  reason: string,
): void {
  draft.setRun(run, { state: 'failed', lastError: code, result: { outcome: 'failed', code } });
  draft.event({ type: 'step-failed', stepId: run.stepId, data: { code, reason } });
  if (step.onFailure === 'fail-case') {
    draft.setStatus('failed');
    cancelRemaining(draft, 'case-failed');
    draft.notify('leo', 'notice', 'case-failed', { stepId: run.stepId, code });
  } else {
    draft.setStatus('action-required');
    draft.event({ type: 'case-action-required', stepId: run.stepId, data: { code } });
    draft.notify('leo', 'notice', 'case-action-required', { stepId: run.stepId, code });
  }
}

/**
 * Every step not yet final is cancelled; agencies with one in flight are told to stop. A look-up
 * still pending is closed: its answer is ignored, and the reconciler must not ask again.
 */
/**
 * What an agency is told of why a case was cancelled: who cancelled it, never the words a
 * citizen or an administrator gave (free text may hold anything, and is for leo's own history).
 */
const CANCEL_REASONS = {
  citizen: 'cancelled by the applicant',
  admin: 'cancelled by an administrator',
  'case-failed': 'case failed',
} as const;

export function cancelRemaining(draft: Draft, why: keyof typeof CANCEL_REASONS): void {
  const reason = CANCEL_REASONS[why];
  for (const lookup of draft.lookups) {
    if (lookup.state === 'pending') {
      draft.changeLookup(lookup, { state: 'failed', lastError: 'case-closed' });
    }
  }
  for (const run of draft.runs.values()) {
    if (FINAL_STEP_STATES.includes(run.state)) continue;
    // A ready step may already be on its queue (published, not yet marked dispatched), unless
    // it waits for its instance to be onboarded: nothing of it left leo.
    const inFlight =
      ['ready', 'dispatched', 'awaiting-decision'].includes(run.state) && !isHeldNotOnboarded(run);
    draft.setRun(run, { state: 'cancelled' });
    draft.event({ type: 'step-cancelled', stepId: run.stepId, data: { inFlight } });
    if (inFlight) {
      const job: StepCancelJob = {
        caseId: run.caseId,
        stepRunId: run.id,
        action: run.action,
        idempotencyKey: run.id,
        reason,
      };
      draft.effect({ type: 'cancel-step', agency: run.agency, jobId: `${run.id}.cancel`, job });
    }
  }
}

/**
 * Marks an open step past its deadline overdue (administrators see it; the citizen is told),
 * with an event. Never dropped: the step keeps waiting for its answer.
 */
export function escalate(draft: Draft, run: StepRunRecord, now: number): void {
  if (
    !OPEN_STEP_STATES.includes(run.state) ||
    run.overdue ||
    !run.deadlineAt ||
    run.deadlineAt.getTime() > now ||
    FINAL_CASE_STATUSES.includes(draft.caseRecord.status)
  ) {
    return;
  }
  draft.setRun(run, { overdue: true });
  const deadline = run.deadlineAt.toISOString();
  draft.event({
    type: 'step-overdue',
    stepId: run.stepId,
    data: { deadline, state: run.state, agency: run.agency },
  });
  draft.notify('leo', 'notice', 'step-overdue', {
    stepId: run.stepId,
    action: run.action,
    agency: run.agency,
    deadline,
    waitingFor: run.state === 'awaiting-citizen' ? 'citizen' : 'agency',
  });
}

/**
 * A completed action that changes facts of its agency's register (a change of address): the
 * subject's records of those facts are stale, so they are looked up afresh, for this case.
 */
export function refreshChanged(draft: Draft, run: StepRunRecord): void {
  const action = draft.env.catalogue.agencies
    .get(run.agency)
    ?.actions.find((a) => a.name === run.action);
  if (!action?.changes?.length) return;
  const facts = draft.usable();
  const held = action.changes.filter((key) => facts.has(key));
  if (held.length === 0) return;
  const lookup = draft.addLookup(run.agency, held);
  draft.event({
    type: 'facts-changed',
    stepId: run.stepId,
    data: { agency: run.agency, factKeys: held },
  });
  dispatchLookup(draft, lookup, 1, 0, facts);
}

/**
 * Proactive reuse: once a case has completed, the other life events that now need fewer
 * answers from the citizen than before it (its facts are on file) are named in a message.
 */
function tellFewerAnswers(draft: Draft): void {
  const { catalogue, definition, published } = draft.env;
  const now = draft.now.getTime();
  const caseId = draft.caseRecord.id;
  const records = [...draft.facts.values()];
  const after = usableFacts(records, catalogue, '', now);
  const before = usableFacts(
    records.filter((r) => r.caseId !== caseId),
    catalogue,
    '',
    now,
  );
  // Only a life event that would ask one of this case's facts can need fewer answers: facts a
  // citizen gives or an agency produces (never the identity, never a register's look-up).
  const fromThisCase = new Set(
    records
      .filter((r) => r.caseId === caseId && r.factKey !== IDENTITY_FACT)
      .filter((r) => catalogue.facts.get(r.factKey)?.source.kind !== 'lookup')
      .map((r) => r.factKey),
  );
  // What a life event may ask: its inputs that the citizen gives, less those on file.
  const askable = (other: DefinitionWithDefaults): string[] =>
    other.inputs.filter(
      (key) => key !== IDENTITY_FACT && catalogue.facts.get(key)?.source.kind === 'citizen',
    );
  const fewer: Array<{ lifeEvent: string; before: number; now: number }> = [];
  for (const other of published) {
    if (other.key === definition.key) continue;
    if (!other.inputs.some((key) => fromThisCase.has(key))) continue;
    const count = (facts: Map<string, FactRecord>): number =>
      askable(other).filter((key) => !facts.has(key)).length;
    const [was, is] = [count(before), count(after)];
    if (is < was) fewer.push({ lifeEvent: other.key, before: was, now: is });
  }
  if (fewer.length > 0) draft.notify('leo', 'notice', 'fewer-answers', { lifeEvents: fewer });
}
