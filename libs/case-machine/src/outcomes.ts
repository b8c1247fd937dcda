import {
  CONFIGURATION_FAULTS,
  type FactValue,
  type LookupResult,
  type StepResult,
} from '#agency-contract';
import type { FactValidator } from '#facts';
import type { Catalogue, DefinitionWithDefaults, StepWithDefaults } from '#workflow';
import { refuse, type Draft } from './draft.js';
import type { LookupRecord, StepRunRecord } from './records.js';
import { answerable } from './resolution.js';
import {
  backoffDelayMs,
  dispatch,
  dispatchLookup,
  failStep,
  lookupBackoffMs,
  refreshChanged,
} from './steps.js';
import type { Problem } from './types.js';

/** What an agency's answers may set, and what they do to a step or a look-up. */

/** Only the declared facts, all of them, each valid: anything else is a problem. */
export function checkProduced(
  validator: FactValidator,
  step: StepWithDefaults,
  produced: Record<string, FactValue>,
): Problem[] | undefined {
  const problems: Problem[] = [];
  for (const key of Object.keys(produced)) {
    if (!step.produces.includes(key)) {
      problems.push({ path: key, reason: 'is not a fact this step produces', code: 'undeclared' });
    }
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

/** Valid, normalised answers; or a refusal naming every field that is wrong and why. */
export function checkAnswers(
  definition: DefinitionWithDefaults,
  catalogue: Catalogue,
  validator: FactValidator,
  lookups: readonly LookupRecord[],
  answers: Record<string, unknown>,
): Record<string, unknown> {
  const problems: Problem[] = [];
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
    throw refuse(
      'invalid',
      'validation-failed',
      `The answers have ${problems.length} problem(s).`,
      problems,
    );
  }
  return normalised;
}

/** What one answer of an agency does to its step (the answer was checked to be current). */
export function applyOutcome(
  draft: Draft,
  run: StepRunRecord,
  step: StepWithDefaults,
  result: StepResult,
): void {
  const outcome = result.result;
  switch (outcome.outcome) {
    case 'completed': {
      const refusal = checkProduced(draft.env.validator, step, outcome.produced);
      if (refusal) {
        draft.event({ type: 'result-refused', stepId: run.stepId, data: { problems: refusal } });
        failStep(
          draft,
          run,
          step,
          'invalid-result',
          'The agency answered with facts the step may not set, or invalid values.',
        );
        return;
      }
      draft.addFacts(
        Object.entries(outcome.produced).map(([factKey, value]) => ({
          factKey,
          value: draft.env.validator.normalise(factKey, value),
          source: 'agency' as const,
          agency: run.agency,
          stepRunId: run.id,
        })),
      );
      const producedKeys = Object.keys(outcome.produced);
      const reference = outcome.reference ?? null;
      draft.setRun(run, {
        state: 'completed',
        result: { outcome: 'completed', producedKeys, reference },
        agencyReference: outcome.reference ?? run.agencyReference,
      });
      draft.event({
        type: 'step-completed',
        stepId: run.stepId,
        data: { attempt: run.attempt, producedKeys, reference },
      });
      refreshChanged(draft, run);
      if (step.kind === 'decision') {
        draft.notify(run.agency, 'decision', 'step-granted', {
          stepId: run.stepId,
          action: run.action,
          reference: outcome.reference ?? run.agencyReference,
        });
      }
      return;
    }
    case 'pending':
      draft.setRun(run, {
        state: 'awaiting-decision',
        agencyReference: outcome.reference,
        expectedDecisionAt: outcome.expectedDecisionAt
          ? new Date(outcome.expectedDecisionAt)
          : null,
      });
      draft.event({
        type: 'step-awaiting-decision',
        stepId: run.stepId,
        data: {
          reference: outcome.reference,
          expectedDecisionAt: outcome.expectedDecisionAt ?? null,
        },
      });
      draft.notify(run.agency, 'receipt', 'step-awaiting-decision', {
        stepId: run.stepId,
        action: run.action,
        reference: outcome.reference,
        expectedDecisionAt: outcome.expectedDecisionAt ?? null,
      });
      return;
    case 'rejected':
      // An older adapter answers an action it has no handler for as a refusal: it is not one.
      if (CONFIGURATION_FAULTS.has(outcome.code)) {
        retryConfigurationFault(draft, run, step, outcome.code);
        return;
      }
      draft.event({
        type: 'step-rejected',
        stepId: run.stepId,
        data: { code: outcome.code, reason: outcome.reason, reference: outcome.reference ?? null },
      });
      draft.notify(run.agency, 'decision', 'step-refused', {
        stepId: run.stepId,
        action: run.action,
        reference: outcome.reference ?? run.agencyReference,
        code: outcome.code,
        reason: outcome.reason,
      });
      failStep(draft, run, step, outcome.code, outcome.reason);
      return;
    case 'retryable-error':
      if (CONFIGURATION_FAULTS.has(outcome.code)) {
        retryConfigurationFault(draft, run, step, outcome.code);
        return;
      }
      if (run.attempt < run.maxAttempts) {
        const delayMs = backoffDelayMs(step, run.attempt + 1, draft.env.random());
        draft.event({
          type: 'step-retry-scheduled',
          stepId: run.stepId,
          data: { code: outcome.code, attempt: run.attempt + 1, delayMs },
        });
        dispatch(draft, run, step, {
          attempt: run.attempt + 1,
          delayMs,
          previousError: outcome.code,
        });
      } else {
        draft.event({
          type: 'step-attempts-exhausted',
          stepId: run.stepId,
          data: { code: outcome.code },
        });
        failStep(draft, run, step, 'attempts-exhausted', outcome.reason);
      }
      return;
  }
}

/**
 * The adapter cannot do the action at all (leo's or the agency's configuration is at fault, not
 * the application): the step is tried again with backoff, however many attempts that takes
 * (each one extends its attempt budget by one),
 * until someone configures the action, and shows as delayed meanwhile; never failed, never a
 * refusal. Its deadline still escalates it as for any step.
 */
function retryConfigurationFault(
  draft: Draft,
  run: StepRunRecord,
  step: StepWithDefaults,
  code: string,
): void {
  const delayMs = backoffDelayMs(step, run.attempt + 1, draft.env.random());
  draft.event({
    type: 'step-configuration-fault',
    stepId: run.stepId,
    data: { code, agency: run.agency, action: run.action, attempt: run.attempt + 1, delayMs },
  });
  // The attempt it took is not counted against the step's retry policy: once configured, the
  // step still has every attempt its policy gives for passing errors.
  draft.setRun(run, { maxAttempts: run.maxAttempts + 1 });
  dispatch(draft, run, step, { attempt: run.attempt + 1, delayMs, previousError: code });
}

/**
 * An agency's answer to a look-up (checked to be current): found values (only keys asked for,
 * each valid) are recorded with the agency as their source; keys it lacks are left to the
 * citizen; a retryable error is retried with backoff, and after the last attempt the keys are
 * asked of the citizen.
 */
export function applyLookupOutcome(draft: Draft, lookup: LookupRecord, result: LookupResult): void {
  const outcome = result.result;
  if (outcome.outcome === 'retryable-error') {
    if (lookup.attempt < lookup.maxAttempts) {
      const delayMs = lookupBackoffMs(lookup.attempt, draft.env.random());
      dispatchLookup(draft, lookup, lookup.attempt + 1, delayMs);
      return;
    }
    draft.changeLookup(lookup, {
      state: 'failed',
      unavailableKeys: lookup.factKeys,
      lastError: outcome.code,
    });
    draft.event({
      type: 'lookup-failed',
      data: { agency: lookup.agency, factKeys: lookup.factKeys, code: outcome.code },
    });
    return;
  }
  const { validator } = draft.env;
  const found: Record<string, unknown> = {};
  const refused: Problem[] = [];
  for (const [key, value] of Object.entries(outcome.facts)) {
    if (!lookup.factKeys.includes(key)) {
      refused.push({ path: key, reason: 'was not asked for', code: 'undeclared' });
      continue;
    }
    const issues = validator.validate(key, value);
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
    found[key] = validator.normalise(key, value);
  }
  if (refused.length > 0) {
    draft.event({
      type: 'lookup-result-refused',
      data: { agency: lookup.agency, lookupId: lookup.id, problems: refused },
    });
  }
  draft.addFacts(
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
  draft.changeLookup(lookup, { state: 'answered', foundKeys, unavailableKeys });
  draft.event({
    type: 'lookup-answered',
    data: { agency: lookup.agency, foundKeys, unavailableKeys },
  });
}
