import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { FactValue } from '#agency-contract';
import {
  agencyByCode,
  routeStep,
  type Catalogue,
  type DefinitionWithDefaults,
  type LocalisedText,
} from '#workflow';
import type { CitizenPrincipal } from '../auth/principal.js';
import { DomainError } from '../common/domain-error.js';
import { CaseSignals } from '../engine/case-signals.js';
import { CitizenRepository } from './citizen.repository.js';
import { caseIdForKey, keyDigest, requestDigest } from './idempotency.js';
import { EngineRepository } from '../engine/engine.repository.js';
import { EngineService } from '../engine/engine.service.js';
import type { FactRecord, StepRunRecord } from '../engine/engine.types.js';
import {
  isHeldByConfigurationFault,
  relevantInputs,
  resolve,
  usableFacts,
  type Preview,
  type PreviewSource,
  type Resolution,
} from '#case-machine';
import type {
  CaseViewDto,
  FactStatusDto,
  LifeEventSummaryDto,
  PreviewDto,
  QuestionDto,
  StepViewDto,
} from './citizen.dto.js';

const SUBJECT_CACHE_SIZE = 10_000;

/** The subject of a citizen leo has never seen: no subject has this id, so it owns nothing. */
export const NO_SUBJECT = '00000000-0000-0000-0000-000000000000';

const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);

/**
 * The citizen's use cases over the engine: which life events exist and what each would ask of
 * them, a case as they see it (what is reused, looked up, still to answer; each step's state),
 * the preview they consent to. Every operation is bound to the caller's subject: another
 * citizen's case is not found.
 */
@Injectable()
export class CitizenService {
  private readonly subjects = new Map<string, string>();

  constructor(
    private readonly engine: EngineService,
    private readonly engineRepository: EngineRepository,
    private readonly signals: CaseSignals,
    private readonly repository: CitizenRepository,
  ) {}

  /**
   * The pseudonymous subject of a signed-in citizen. Found by a digest of the identity number
   * (the same person whatever identity provider they came through), and made only when `create`
   * (opening a case): a citizen leo has never seen who only reads is `NO_SUBJECT`, which owns
   * nothing, so a read writes nothing and finds nothing.
   */
  async subjectOf(
    principal: CitizenPrincipal,
    how: { create: boolean } = { create: false },
  ): Promise<string> {
    const digest = createHash('sha256')
      .update(`se-personal-identity-number:${principal.personalNumber}`)
      .digest('hex');
    const cached = this.subjects.get(digest);
    if (cached) return cached;
    const subjectId = how.create
      ? await this.engineRepository.subjectByDigest(digest)
      : await this.engineRepository.findSubjectByDigest(digest);
    if (subjectId === undefined) return NO_SUBJECT;
    if (this.subjects.size >= SUBJECT_CACHE_SIZE) this.subjects.clear();
    this.subjects.set(digest, subjectId);
    return subjectId;
  }

  /** The title of a life event by key (its current version's), or the key itself. */
  async lifeEventTitles(): Promise<(key: string) => LocalisedText> {
    const titles = new Map((await this.engine.publishedDefinitions()).map((d) => [d.key, d.title]));
    return (key) => titles.get(key) ?? { sv: key, en: key };
  }

  /**
   * The life events a citizen can start, each with what it would ask of them today given what
   * is on file (and what it would look up instead of asking).
   */
  async lifeEvents(subjectId: string): Promise<LifeEventSummaryDto[]> {
    const [{ catalogue }, definitions, records] = await Promise.all([
      this.engine.catalogue(),
      this.engine.publishedDefinitions(),
      this.engineRepository.currentFacts(subjectId),
    ]);
    const facts = usableFacts(records.values(), catalogue, '', Date.now());
    return definitions.map((definition) => {
      const resolution = resolve({ definition, catalogue, facts, lookups: [] });
      return {
        key: definition.key,
        title: definition.title,
        description: definition.description,
        agencies: [...new Set(definition.steps.map((s) => s.agency))].sort(),
        questions: resolution.toAsk.length,
        lookups: [...resolution.toLookUp.values()].flat().length,
        reused: relevantInputs(definition, resolution).filter((k) => facts.has(k)).length,
      };
    });
  }

  // ---- cases ----------------------------------------------------------------------------

  async openCase(
    principal: CitizenPrincipal,
    subjectId: string,
    input: { lifeEvent: string; answers: Record<string, unknown> },
    waitSeconds: number,
    idempotencyKey?: string,
  ): Promise<{ view: CaseViewDto; replayed: boolean }> {
    const open = (caseId?: string) =>
      this.engine.openCase({
        subjectId,
        lifeEventKey: input.lifeEvent,
        personalNumber: principal.personalNumber,
        answers: input.answers,
        ...(caseId ? { caseId } : {}),
      });
    if (idempotencyKey === undefined) {
      const opened = await open();
      return { view: await this.afterOpen(subjectId, opened.id, waitSeconds), replayed: false };
    }
    // With a key: the case it makes has an id of the key's, so a retry finds the case the first
    // attempt made, even when that attempt's answer (or the record below) was lost.
    const key = keyDigest(idempotencyKey);
    const request = requestDigest(input);
    const caseId = caseIdForKey(subjectId, key);
    const used = await this.repository.idempotentRequest(subjectId, key);
    if (used && used.requestSha256 !== request) {
      throw new DomainError(
        'unprocessable',
        'idempotency-key-reused',
        'This Idempotency-Key was used with another request: use a new key for a new case.',
        [{ path: 'Idempotency-Key', reason: 'was used with another request' }],
      );
    }
    let replayed = (await this.engineRepository.findCase(caseId)) !== null;
    if (!replayed) {
      try {
        await open(caseId);
      } catch (error) {
        // Two attempts at once: the other one made it.
        if ((await this.engineRepository.findCase(caseId)) === null) throw error;
        replayed = true;
      }
    }
    if (!used) await this.repository.recordIdempotentRequest(subjectId, key, request, caseId);
    return { view: await this.afterOpen(subjectId, caseId, waitSeconds), replayed };
  }

  /** The new case's view, once its look-ups are back when the citizen asked to wait. */
  private async afterOpen(
    subjectId: string,
    caseId: string,
    waitSeconds: number,
  ): Promise<CaseViewDto> {
    if (waitSeconds > 0) {
      // Prefer: wait — answer once the look-ups are back, so the front-end can show the
      // questions that remain in one round trip.
      // A case is resolving exactly while a look-up is pending (the transaction that answers
      // one dispatches any look-up it makes necessary).
      await this.signals.waitFor(
        caseId,
        async () => ((await this.engine.hasPendingLookups(caseId)) ? undefined : true),
        waitSeconds * 1_000,
      );
    }
    return this.caseView(subjectId, caseId);
  }

  /** The case as its citizen sees it; another's case is not found. */
  async caseView(subjectId: string, caseId: string): Promise<CaseViewDto> {
    const { caseRecord, resolution, runs, facts } = await this.owned(subjectId, caseId);
    const [definition, { catalogue }] = await Promise.all([
      this.engine.definition(caseRecord.definitionId),
      this.engine.catalogue(),
    ]);
    const indexOf = new Map(definition.steps.map((s, i) => [s.id, i]));
    const order = (stepId: string): number => indexOf.get(stepId) ?? Number.MAX_SAFE_INTEGER;
    const open = caseRecord.status === 'open';
    const view: CaseViewDto = {
      id: caseRecord.id,
      lifeEvent: caseRecord.lifeEventKey,
      version: caseRecord.definitionVersion,
      title: definition.title,
      status: caseRecord.status,
      createdAt: caseRecord.createdAt.toISOString(),
      submittedAt: iso(caseRecord.submittedAt),
      finishedAt: iso(caseRecord.finishedAt),
      revision: caseRecord.revision,
      // Where each fact came from stays part of the case after it is submitted; only an open
      // case has questions left to answer.
      resolution: {
        state: open ? resolution.state : 'ready',
        questions: open ? resolution.toAsk.map((key) => this.question(key, catalogue)) : [],
        facts: this.factStatuses(definition, catalogue, resolution, facts, caseId),
      },
      steps: [...runs]
        .sort((a, b) => order(a.stepId) - order(b.stepId))
        .map((run) => this.stepView(run, definition, catalogue)),
    };
    return view;
  }

  private async owned(
    subjectId: string,
    caseId: string,
  ): Promise<Awaited<ReturnType<EngineService['resolution']>>> {
    const found = await this.engine.resolution(caseId).catch((error: unknown) => {
      if (error instanceof DomainError && error.code === 'case-not-found') return undefined;
      throw error;
    });
    if (!found || found.caseRecord.subjectId !== subjectId) {
      throw new DomainError('not-found', 'case-not-found', 'No such case of yours.');
    }
    return found;
  }

  private stepView(
    run: StepRunRecord,
    definition: DefinitionWithDefaults,
    catalogue: Catalogue,
  ): StepViewDto {
    const step = definition.steps.find((s) => s.id === run.stepId);
    const agency = agencyByCode(catalogue, run.agency)?.agency;
    const title = step?.title ??
      agency?.actions.find((a) => a.name === run.action)?.title ?? {
        sv: run.action,
        en: run.action,
      };
    return {
      stepId: run.stepId,
      title,
      agency: run.agency,
      agencyName: agency?.name ?? { sv: run.agency, en: run.agency },
      kind: run.kind,
      state: run.state,
      agencyReference: run.agencyReference,
      expectedDecisionAt: iso(run.expectedDecisionAt),
      deadline: iso(run.deadlineAt),
      overdue: run.overdue,
      delayed: run.overdue || isHeldByConfigurationFault(run),
      ...(run.state === 'awaiting-citizen' && step
        ? { task: { facts: step.produces.map((key) => this.question(key, catalogue)) } }
        : {}),
    };
  }

  private question(key: string, catalogue: Catalogue): QuestionDto {
    const fact = catalogue.facts.get(key);
    return {
      key,
      label: fact?.label ?? { sv: key, en: key },
      ...(fact?.description ? { description: fact.description } : {}),
      schema: fact?.schema ?? {},
    };
  }

  /** For each fact the case needs: given here, reused (and from where), looked up, or to ask. */
  private factStatuses(
    definition: DefinitionWithDefaults,
    catalogue: Catalogue,
    resolution: Resolution,
    facts: ReadonlyMap<string, FactRecord>,
    caseId: string,
  ): FactStatusDto[] {
    return relevantInputs(definition, resolution).map((key): FactStatusDto => {
      const label = catalogue.facts.get(key)?.label ?? { sv: key, en: key };
      if (resolution.toAsk.includes(key)) return { key, label, status: 'to-ask' };
      const source = catalogue.facts.get(key)?.source;
      if (resolution.lookingUp.includes(key)) {
        return {
          key,
          label,
          status: 'looking-up',
          ...(source?.kind === 'lookup' ? { agency: source.agency } : {}),
        };
      }
      const record = facts.get(key);
      if (!record) {
        // Not asked yet (the look-ups come first, or a condition is still open): a fact of an
        // agency's register is about to be looked up; any other only the citizen can give.
        return source?.kind === 'lookup'
          ? { key, label, status: 'looking-up', agency: source.agency }
          : { key, label, status: 'to-ask' };
      }
      const from = {
        recordId: record.id,
        recordedAt: record.createdAt.toISOString(),
        ...(record.agency ? { agency: record.agency } : {}),
        ...(record.caseId && record.caseId !== caseId ? { caseId: record.caseId } : {}),
      };
      if (record.source === 'e-identification') {
        return { key, label, status: 'from-e-identification', ...from };
      }
      if (record.caseId !== caseId)
        return { key, label, status: 'reused', source: record.source, ...from };
      return {
        key,
        label,
        status: record.source === 'lookup' ? 'looked-up' : 'given',
        source: record.source,
        ...from,
      };
    });
  }

  async answer(
    subjectId: string,
    caseId: string,
    answers: Record<string, unknown>,
  ): Promise<CaseViewDto> {
    await this.engine.answer(caseId, subjectId, answers);
    return this.caseView(subjectId, caseId);
  }

  /**
   * For each agency, exactly the facts it will receive, their values and where each came from;
   * with the checksum the citizen's consent must name when submitting.
   */
  async preview(subjectId: string, caseId: string): Promise<PreviewDto> {
    const { caseRecord, resolution, preview } = await this.owned(subjectId, caseId);
    if (caseRecord.status !== 'open') {
      throw new DomainError(
        'conflict',
        'case-not-open',
        `The case is ${caseRecord.status}, not open.`,
      );
    }
    if (!preview) {
      throw new DomainError(
        'conflict',
        resolution.state === 'resolving' ? 'resolution-pending' : 'answers-missing',
        resolution.state === 'resolving'
          ? 'Facts are still being looked up from the agencies; try again shortly.'
          : `The case still needs answers: ${resolution.toAsk.join(', ')}.`,
      );
    }
    const [{ catalogue }, definition] = await Promise.all([
      this.engine.catalogue(),
      this.engine.definition(caseRecord.definitionId),
    ]);
    const agencies = new Map<string, PreviewDto['agencies'][number]>();
    for (const step of preview.steps) {
      const code = recipientOf(catalogue, step);
      const agency = agencyByCode(catalogue, code)?.agency;
      let entry = agencies.get(code);
      if (!entry) {
        entry = { agency: code, name: agency?.name ?? { sv: code, en: code }, steps: [] };
        agencies.set(code, entry);
      }
      const title = definition.steps.find((s) => s.id === step.stepId)?.title ??
        agency?.actions.find((a) => a.name === step.action)?.title ?? {
          sv: step.action,
          en: step.action,
        };
      entry.steps.push({
        stepId: step.stepId,
        title,
        conditional: step.conditional,
        facts: step.facts.map((f) => ({
          key: f.key,
          label: catalogue.facts.get(f.key)?.label ?? { sv: f.key, en: f.key },
          ...(f.value !== undefined ? { value: f.value as FactValue } : {}),
          source: this.sourceView(f.source, caseId),
        })),
      });
    }
    return {
      caseId,
      checksum: preview.checksum,
      agencies: [...agencies.values()],
    };
  }

  private sourceView(
    source: PreviewSource,
    caseId: string,
  ): PreviewDto['agencies'][number]['steps'][number]['facts'][number]['source'] {
    if (source.kind === 'will-be-produced') {
      return { kind: 'will-be-produced', agency: source.agency, stepId: source.stepId };
    }
    return {
      kind: source.kind,
      reused: source.caseId !== caseId,
      recordedAt: source.recordedAt,
      ...(source.agency ? { agency: source.agency } : {}),
      ...(source.caseId && source.caseId !== caseId ? { caseId: source.caseId } : {}),
    };
  }

  async submit(subjectId: string, caseId: string, previewChecksum: string): Promise<CaseViewDto> {
    await this.engine.submitCase(caseId, { previewChecksum, subjectId });
    return this.caseView(subjectId, caseId);
  }

  async cancel(
    subjectId: string,
    caseId: string,
    reason: string | undefined,
  ): Promise<CaseViewDto> {
    await this.engine.cancelCase(caseId, reason ?? 'cancelled by the citizen', {
      role: 'citizen',
      subjectId,
    });
    return this.caseView(subjectId, caseId);
  }

  async completeTask(
    subjectId: string,
    caseId: string,
    stepId: string,
    facts: Record<string, FactValue>,
  ): Promise<CaseViewDto> {
    await this.engine.completeCitizenTask(caseId, subjectId, stepId, facts);
    return this.caseView(subjectId, caseId);
  }
}

/**
 * Who receives a previewed step: its agency, or for an agency of many (the municipalities) the
 * instance its routing need names when that value is known (kommun-0180, Stockholms stad).
 */
function recipientOf(catalogue: Catalogue, step: Preview['steps'][number]): string {
  return routeStep(
    catalogue,
    step.agency,
    step.facts.map((f) => f.key),
    (key) => step.facts.find((f) => f.key === key)?.value,
  ).code;
}
