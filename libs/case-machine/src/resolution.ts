import { createHash } from 'node:crypto';
import {
  canonicalJson,
  conditionFacts,
  evaluateCondition,
  nominalDurationMs,
  parseIsoDuration,
  plan,
  type Catalogue,
  type LifeEventDefinition,
  type Plan,
  type StepState,
} from '#workflow';
import type { FactRecord, FactRecordSource, LookupRecord } from './records.js';

/**
 * Resolution before asking (invariant 5), and the preview a citizen consents to. Pure functions
 * over a case's definition, the subject's fact records and the case's look-ups: the engine runs
 * them inside the case's transaction, the citizen API to answer reads, and both agree.
 */

/** The fact read from the citizen's e-identification: never asked, never looked up. */
export const IDENTITY_FACT = 'person.personalNumber';

/**
 * The subject's records that may be used by this case, by fact key: the newest of each key,
 * unless it is older than its fact type's `maxAge` and was not recorded for this case itself.
 */
export function usableFacts(
  records: Iterable<FactRecord>,
  catalogue: Catalogue,
  caseId: string,
  now: number,
): Map<string, FactRecord> {
  const usable = new Map<string, FactRecord>();
  for (const record of records) {
    const maxAge = catalogue.facts.get(record.factKey)?.maxAge;
    const duration = maxAge ? parseIsoDuration(maxAge) : undefined;
    const stale =
      duration !== undefined &&
      record.caseId !== caseId &&
      record.createdAt.getTime() + nominalDurationMs(duration) < now;
    if (!stale) usable.set(record.factKey, record);
  }
  return usable;
}

export const known = (facts: ReadonlyMap<string, FactRecord>): Record<string, unknown> =>
  Object.fromEntries([...facts.entries()].map(([key, record]) => [key, record.value]));

export type ResolutionState = 'resolving' | 'needs-answers' | 'ready';

export interface Resolution {
  plan: Plan;
  /**
   * resolving: look-ups are in flight; needs-answers: the citizen must answer `toAsk`; ready:
   * everything the case needs now is known, so it can be previewed and submitted.
   */
  state: ResolutionState;
  /** Facts the citizen must answer: no usable record, and no agency could provide them. */
  toAsk: string[];
  /** Facts to look up now (not yet asked of their agency in this case), by agency. */
  toLookUp: Map<string, string[]>;
  /** Facts whose look-up is in flight. */
  lookingUp: string[];
}

/**
 * What the case still needs and how each fact will be obtained: a usable record is reused; a
 * fact with an authoritative agency is looked up (once per case); only the rest is asked, and
 * a looked-up fact only when its agency had no value for it.
 */
export function resolve(input: {
  definition: LifeEventDefinition;
  catalogue: Catalogue;
  facts: ReadonlyMap<string, FactRecord>;
  lookups: readonly LookupRecord[];
  states?: Readonly<Partial<Record<string, StepState>>>;
}): Resolution {
  const planned = plan(input.definition, known(input.facts), input.states ?? {}, input.catalogue);
  const toAsk = new Set(planned.missing.citizen);
  const toLookUp = new Map<string, string[]>();
  const lookingUp: string[] = [];
  for (const { key, agency } of planned.missing.lookup) {
    const asked = input.lookups.filter((l) => l.factKeys.includes(key));
    if (asked.some((l) => l.state === 'pending')) lookingUp.push(key);
    else if (asked.length > 0) toAsk.add(key);
    else toLookUp.set(agency, [...(toLookUp.get(agency) ?? []), key]);
  }
  const state: ResolutionState =
    lookingUp.length > 0 || toLookUp.size > 0
      ? 'resolving'
      : toAsk.size > 0
        ? 'needs-answers'
        : 'ready';
  return { plan: planned, state, toAsk: [...toAsk].sort(), toLookUp, lookingUp: lookingUp.sort() };
}

/**
 * The inputs the case needs as planned now: needed by a step that is not skipped, or read by the
 * condition of one, in the order of the definition's inputs.
 */
export function relevantInputs(definition: LifeEventDefinition, resolution: Resolution): string[] {
  const inputs = new Set(definition.inputs);
  const statusOf = new Map(resolution.plan.steps.map((p) => [p.id, p.status]));
  const relevant = new Set<string>([...resolution.toAsk, ...resolution.lookingUp]);
  for (const step of definition.steps) {
    if (step.when !== undefined)
      for (const key of conditionFacts(step.when, inputs)) relevant.add(key);
    if (statusOf.get(step.id) === 'skipped') continue;
    for (const key of step.needs) relevant.add(key);
  }
  return definition.inputs.filter((key) => relevant.has(key));
}

/** Fact keys the citizen may answer for this case, and why any other key is refused. */
export function answerable(
  key: string,
  definition: LifeEventDefinition,
  catalogue: Catalogue,
  lookups: readonly LookupRecord[],
): { ok: true } | { ok: false; reason: string; code: string } {
  const fact = catalogue.facts.get(key);
  if (!definition.inputs.includes(key) || !fact) {
    return {
      ok: false,
      code: 'unexpected-fact',
      reason: `is not something ${definition.key} asks for`,
    };
  }
  if (key === IDENTITY_FACT) {
    return {
      ok: false,
      code: 'from-e-identification',
      reason: 'is read from your e-identification and cannot be given',
    };
  }
  if (fact.source.kind === 'lookup') {
    const unavailable = lookups.some(
      (l) =>
        l.factKeys.includes(key) &&
        l.state !== 'pending' &&
        (l.state === 'failed' || l.unavailableKeys.includes(key)),
    );
    if (!unavailable) {
      return {
        ok: false,
        code: 'provided-by-agency',
        reason: `is provided by ${fact.source.agency}, the authoritative source, and is not asked`,
      };
    }
  }
  if (fact.source.kind === 'produced') {
    return { ok: false, code: 'produced-by-agency', reason: 'is produced by an agency step' };
  }
  return { ok: true };
}

// ---- the preview ----------------------------------------------------------------------------

export type PreviewSource =
  | {
      kind: FactRecordSource;
      recordId: string;
      agency: string | null;
      caseId: string | null;
      recordedAt: string;
    }
  | { kind: 'will-be-produced'; agency: string; stepId: string };

export interface PreviewFact {
  key: string;
  /** The value that will be sent; absent for a fact a step will produce first. */
  value?: unknown;
  source: PreviewSource;
}

export interface PreviewStep {
  stepId: string;
  agency: string;
  action: string;
  kind: string;
  /** Runs only if a condition still unknown (it depends on an agency's answer) holds. */
  conditional: boolean;
  facts: PreviewFact[];
}

export interface Preview {
  definitionId: string;
  steps: PreviewStep[];
  /** Over every step, fact and record id: any change of plan or value changes it. */
  checksum: string;
}

/**
 * For each step that will or may run, exactly the facts its agency will receive and where each
 * comes from. Expects a `ready` resolution (every input the plan needs is known).
 */
export function buildPreview(input: {
  definitionId: string;
  definition: LifeEventDefinition;
  facts: ReadonlyMap<string, FactRecord>;
  resolution: Resolution;
}): Preview {
  const statusOf = new Map(input.resolution.plan.steps.map((p) => [p.id, p.status]));
  const running = (id: string): boolean => statusOf.get(id) !== 'skipped';
  const values = known(input.facts);
  const steps: PreviewStep[] = [];
  for (const step of input.definition.steps) {
    const status = statusOf.get(step.id);
    if (status === 'skipped' || status === 'cancelled') continue;
    const facts = step.needs.map((key): PreviewFact => {
      const producer = input.definition.steps.find(
        (s) => s.produces.includes(key) && running(s.id),
      );
      const record = input.facts.get(key);
      if (producer && statusOf.get(producer.id) !== 'completed') {
        return {
          key,
          source: { kind: 'will-be-produced', agency: producer.agency, stepId: producer.id },
        };
      }
      if (!record) {
        // A `ready` resolution leaves no needed input unknown; a fact only a skipped step
        // produces would make the step blocked, which validation of the definition prevents.
        return { key, source: { kind: 'will-be-produced', agency: step.agency, stepId: step.id } };
      }
      return {
        key,
        value: record.value,
        source: {
          kind: record.source,
          recordId: record.id,
          agency: record.agency,
          caseId: record.caseId,
          recordedAt: record.createdAt.toISOString(),
        },
      };
    });
    steps.push({
      stepId: step.id,
      agency: step.agency,
      action: step.action,
      kind: step.kind,
      // Runs only if a condition still open holds: one the answers already decide is not.
      conditional:
        step.when !== undefined &&
        status !== 'ready' &&
        status !== 'completed' &&
        evaluateCondition(step.when, values) !== true,
      facts,
    });
  }
  const checksum = createHash('sha256')
    .update(
      canonicalJson({
        definitionId: input.definitionId,
        steps: steps.map((s) => ({
          stepId: s.stepId,
          facts: s.facts.map((f) => [
            f.key,
            f.source.kind === 'will-be-produced'
              ? `produced:${f.source.stepId}`
              : f.source.recordId,
          ]),
        })),
      }),
    )
    .digest('base64url');
  return { definitionId: input.definitionId, steps, checksum };
}
