import type { StepState } from '#workflow';
import { Draft, decideWith, refuse } from './draft.js';
import { applyLookupOutcome, applyOutcome, checkAnswers, checkProduced } from './outcomes.js';
import {
  FINAL_CASE_STATUSES,
  type CaseRecord,
  type FactRecord,
  type StepRunRecord,
} from './records.js';
import { IDENTITY_FACT, buildPreview, resolve } from './resolution.js';
import { destinationOf, isHeldNotOnboarded } from './routing.js';
import { advance, cancelRemaining, dispatch, escalate, resolveCase } from './steps.js';
import type { CaseInput, CaseState, Decision, Environment, OpenInput } from './types.js';

/**
 * The case machine: every decision about a case, as a function of the case, one input and the
 * environment (definition, catalogue, clock, randomness, ids). No I/O, nothing read in the middle
 * of a decision: the engine loads the state, calls `decide`, and writes what comes out.
 */

/** A timer may fire a little early (the clocks of Redis and of the engine differ). */
export const DEADLINE_TOLERANCE_MS = 1_000;

/**
 * Opens a case on `env.definition` for a subject whose current facts are `facts`: the identity
 * from the e-identification and the answers given are recorded, and what the case needs is
 * resolved (usable records reused, register facts looked up, the rest left to ask). Invalid
 * answers refuse the whole input.
 */
export function openCase(
  input: OpenInput,
  facts: ReadonlyMap<string, FactRecord>,
  env: Environment,
): Decision {
  const { definition, now } = env;
  const caseRecord: CaseRecord = {
    id: input.caseId,
    subjectId: input.subjectId,
    lifeEventKey: definition.key,
    definitionId: input.definitionId,
    definitionVersion: input.definitionVersion,
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
    id: env.newId(),
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
  const draft = new Draft({ caseRecord, runs, lookups: [], facts }, env, true);
  return decideWith(draft, (d) => {
    const answers = checkAnswers(definition, env.catalogue, env.validator, [], input.answers);
    const identity = d.facts.get(IDENTITY_FACT);
    d.addFacts([
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
    d.event({
      type: 'case-opened',
      data: {
        lifeEvent: definition.key,
        version: input.definitionVersion,
        factKeys: Object.keys(answers),
      },
    });
    resolveCase(d);
    return undefined;
  });
}

/** What `input` does to the case `state`. */
export function decide(state: CaseState, input: CaseInput, env: Environment): Decision {
  return decideWith(new Draft(state, env), (draft) => HANDLERS[input.type](draft, input as never));
}

type Handler<T extends CaseInput['type']> = (
  draft: Draft,
  input: Extract<CaseInput, { type: T }>,
) => string | undefined;

/** Each handler changes the draft and returns undefined, or returns why nothing changes. */
const HANDLERS: { [T in CaseInput['type']]: Handler<T> } = {
  answer(draft, { answers }) {
    requireOpen(draft);
    const { definition, catalogue, validator } = draft.env;
    const checked = checkAnswers(definition, catalogue, validator, draft.lookups, answers);
    draft.addFacts(
      Object.entries(checked).map(([factKey, value]) => ({
        factKey,
        value,
        source: 'citizen' as const,
      })),
    );
    draft.event({ type: 'answers-given', data: { factKeys: Object.keys(checked) } });
    resolveCase(draft);
    return undefined;
  },

  submit(draft, { previewChecksum }) {
    // The same consent again (a retry whose first answer was lost, or a command its owner
    // applied and died before answering): what it asked for is done, and nothing more happens.
    if (
      draft.caseRecord.submittedAt !== null &&
      draft.caseRecord.consentChecksum === previewChecksum
    ) {
      return 'already-submitted';
    }
    requireOpen(draft);
    const { definition, catalogue } = draft.env;
    const facts = draft.usable();
    const resolution = resolve({ definition, catalogue, facts, lookups: draft.lookups });
    if (resolution.state !== 'ready') {
      throw refuse(
        'conflict',
        resolution.state === 'resolving' ? 'resolution-pending' : 'answers-missing',
        resolution.state === 'resolving'
          ? 'Facts are still being looked up from the agencies; preview again shortly.'
          : `The case still needs answers: ${resolution.toAsk.join(', ')}.`,
      );
    }
    const preview = buildPreview({
      definitionId: draft.caseRecord.definitionId,
      definition,
      facts,
      resolution,
    });
    if (preview.checksum !== previewChecksum) {
      throw refuse(
        'conflict',
        'preview-stale',
        'The preview has changed since it was shown: look at the new preview and consent to it.',
        [{ path: 'previewChecksum', reason: 'is not the checksum of the current preview' }],
      );
    }
    Object.assign(draft.caseRecord, {
      consentChecksum: preview.checksum,
      consentedAt: draft.now,
      submittedAt: draft.now,
    });
    draft.setStatus('running');
    draft.event({ type: 'case-submitted', data: { previewChecksum: preview.checksum } });
    draft.notify('leo', 'receipt', 'case-submitted', {
      lifeEvent: definition.key,
      agencies: [...new Set(preview.steps.map((p) => p.agency))].sort(),
    });
    advance(draft);
    return undefined;
  },

  'lookup-result'(draft, { result }) {
    const lookup = draft.lookups.find((l) => l.id === result.lookupId);
    if (!lookup) return 'unknown look-up';
    // A completed case still takes the answer of a look-up it started (a register's fresh value
    // after a change of address, for the cases that come after); a cancelled or failed one does
    // not: nothing more is asked, and nothing more disclosed, for it.
    const { status } = draft.caseRecord;
    if (status === 'cancelled' || status === 'failed') return `case is ${status}`;
    if (result.agency !== lookup.agency) return 'from another agency';
    if (lookup.state !== 'pending') return `look-up is ${lookup.state}`;
    if (result.attempt !== lookup.attempt) return 'stale attempt';
    applyLookupOutcome(draft, lookup, result);
    if (draft.caseRecord.status === 'open') resolveCase(draft);
    else if (draft.caseRecord.status === 'running') advance(draft);
    return undefined;
  },

  'step-result'(draft, { result }) {
    const run = draft.runById(result.stepRunId);
    const step = run && draft.step(run.stepId);
    if (!run || !step) return 'unknown step run';
    const open: StepState[] =
      result.result.outcome === 'pending'
        ? ['ready', 'dispatched']
        : ['ready', 'dispatched', 'awaiting-decision'];
    if (result.agency !== run.agency) return 'from another agency';
    if (FINAL_CASE_STATUSES.includes(draft.caseRecord.status)) {
      return `case is ${draft.caseRecord.status}`;
    }
    if (result.attempt !== run.attempt) return 'stale attempt';
    if (!open.includes(run.state)) return `step is ${run.state}`;
    applyOutcome(draft, run, step, result);
    if (draft.caseRecord.status === 'running') advance(draft);
    return undefined;
  },

  decision(draft, { agency, stepRunId, decision }) {
    const run = draft.runById(stepRunId);
    const step = run && draft.step(run.stepId);
    // Another agency's step is not found: an agency learns nothing of others' steps.
    if (!run || !step || run.agency !== agency) {
      throw refuse('not-found', 'step-not-found', 'No step of yours with that id.');
    }
    if (
      run.state !== 'awaiting-decision' ||
      FINAL_CASE_STATUSES.includes(draft.caseRecord.status)
    ) {
      throw refuse(
        'conflict',
        'not-awaiting-decision',
        `The step is ${run.state}: it is not awaiting a decision.`,
      );
    }
    if (decision.outcome === 'completed') {
      // Over REST the agency is told what is wrong and nothing changes; on the queue, where
      // nobody can be told, a bad result fails the step instead.
      const problems = checkProduced(draft.env.validator, step, decision.produced);
      if (problems) {
        throw refuse(
          'invalid',
          'validation-failed',
          'The decision sets facts the step may not set, or invalid values.',
          problems.map((p) => ({ ...p, path: `produced.${p.path}` })),
        );
      }
    }
    draft.event({
      type: 'decision-reported',
      stepId: run.stepId,
      data: { outcome: decision.outcome, via: 'rest' },
    });
    applyOutcome(draft, run, step, {
      stepRunId,
      attempt: run.attempt,
      agency,
      result: decision,
      reportedAt: draft.now.toISOString(),
    });
    if (draft.caseRecord.status === 'running') advance(draft);
    return undefined;
  },

  'task-completed'(draft, { stepId, produced }) {
    const run = draft.runs.get(stepId);
    const step = draft.step(stepId);
    if (!run || !step || step.kind !== 'citizen-task') {
      throw refuse('not-found', 'task-not-found', `The case has no task ${stepId}.`);
    }
    if (run.state !== 'awaiting-citizen' || draft.caseRecord.status !== 'running') {
      throw refuse(
        'conflict',
        'task-not-waiting',
        `The task is ${run.state}: it is not waiting for you.`,
      );
    }
    const problems = checkProduced(draft.env.validator, step, produced);
    if (problems) {
      throw refuse(
        'invalid',
        'validation-failed',
        'The task was given facts it does not take, or invalid values.',
        problems.map((p) => ({ ...p, path: `facts.${p.path}` })),
      );
    }
    draft.addFacts(
      Object.entries(produced).map(([factKey, value]) => ({
        factKey,
        value: draft.env.validator.normalise(factKey, value),
        source: 'citizen' as const,
        stepRunId: run.id,
      })),
    );
    const producedKeys = Object.keys(produced);
    draft.setRun(run, {
      state: 'completed',
      result: { outcome: 'completed', producedKeys, reference: null },
    });
    draft.event({ type: 'citizen-task-completed', stepId, data: { producedKeys } });
    advance(draft);
    return undefined;
  },

  'timer-fired'(draft, { stepRunId, deadline }) {
    const run = draft.runById(stepRunId);
    if (!run) return 'unknown step run';
    if (run.deadlineAt?.toISOString() !== deadline) return 'deadline moved';
    escalate(draft, run, draft.now.getTime() + DEADLINE_TOLERANCE_MS);
    return undefined;
  },

  'escalate-overdue'(draft) {
    for (const run of draft.runs.values()) escalate(draft, run, draft.now.getTime());
    return undefined;
  },

  'route-held'(draft) {
    let released = 0;
    for (const run of draft.runs.values()) {
      const step = draft.step(run.stepId);
      if (!step || !isHeldNotOnboarded(run)) continue;
      // Still not onboarded: nothing changes (no event each time the sweep asks).
      if (!destinationOf(draft, run, step, draft.usable()).onboarded) continue;
      dispatch(draft, run, step, { attempt: run.attempt, delayMs: 0, previousError: null });
      released += 1;
    }
    return released === 0 ? 'no step waits for an instance now onboarded' : undefined;
  },

  cancel(draft, { reason, by, actor }) {
    if (FINAL_CASE_STATUSES.includes(draft.caseRecord.status)) {
      throw refuse('conflict', 'case-finished', `The case is already ${draft.caseRecord.status}.`);
    }
    cancelRemaining(draft, by);
    draft.setStatus('cancelled');
    draft.event({
      type: 'case-cancelled',
      data: { reason, by, ...(actor === undefined ? {} : { actor }) },
    });
    draft.notify('leo', 'notice', 'case-cancelled', { by });
    return undefined;
  },

  'retry-step'(draft, { stepId, actor }) {
    const run = draft.runs.get(stepId);
    const step = draft.step(stepId);
    if (!run || !step)
      throw refuse('not-found', 'step-not-found', `The case has no step ${stepId}.`);
    if (run.state !== 'failed' || draft.caseRecord.status !== 'action-required') {
      throw refuse(
        'conflict',
        'step-not-retryable',
        `Only a failed step of a case needing action can be retried; ${stepId} is ${run.state}.`,
      );
    }
    draft.event({ type: 'step-retried-by-admin', stepId, data: { actor: actor ?? null } });
    draft.setRun(run, { maxAttempts: run.attempt + step.retry.attempts });
    dispatch(draft, run, step, {
      attempt: run.attempt + 1,
      delayMs: 0,
      previousError: null,
      freshDeadline: true,
    });
    // The case runs again once no step is left failed: with another still failed it keeps
    // needing action (that step stays retryable), and nothing else starts until it is retried.
    if (![...draft.runs.values()].some((r) => r.state === 'failed')) {
      draft.setStatus('running');
      advance(draft);
    }
    return undefined;
  },
};

function requireOpen(draft: Draft): void {
  if (draft.caseRecord.status !== 'open') {
    throw refuse('conflict', 'case-not-open', `The case is ${draft.caseRecord.status}, not open.`);
  }
}
