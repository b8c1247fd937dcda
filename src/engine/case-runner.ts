import { Injectable, Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { FACT_LOOKUP, STEP_CANCEL, STEP_EXECUTE, agencyQueueName } from '#agency-contract';
import {
  decide,
  openCase,
  type CaseInput,
  type CaseState,
  type Decision,
  type Effect,
  type Environment,
  type OpenInput,
} from '#case-machine';
import type { DefinitionWithDefaults } from '#workflow';
import { uuidv7 } from '../common/uuid.js';
import type { EngineConfig, ResolvedConfig } from '../config/config.schema.js';
import { CaseChanges } from './case-changes.js';
import { Mailboxes } from './case-mailbox.js';
import { EngineCatalogue } from './engine-catalogue.js';
import { deadlineTimer } from './engine.jobs.js';
import { EngineRepository, type CaseUnit, type LoadedCase } from './engine.repository.js';
import type { OutboxMessage } from './engine.types.js';
import { OutboxRelay } from './outbox.relay.js';

/** Tries of one input before it gives up on a case that keeps changing (never seen). */
const MAX_CONFLICT_RETRIES = 50;

/** How an input finds its case: by the case's id, or one of its step runs' or look-ups'. */
export type CaseAddress = { caseId: string } | { stepRunId: string } | { lookupId: string };

/** What became of an input: its case's decision, or no such case. */
export type RunOutcome = { outcome: 'not-found' } | (Decision & { caseId: string });

/**
 * The I/O around the case machine. An input is posted to its case's mailbox (inputs to one case
 * take turns, inputs to different cases run together); its turn reads the case (unless the turn
 * before it left the state), decides, and writes the change in one statement conditional on the
 * case's revision, with its events, fact records, disclosures, messages and outbox rows. The
 * store batches the reads and writes of turns that run together (group commit, decision 0014).
 * If another process changed the case first, the turn reads it again and decides again.
 * Listeners hear of a change once it is committed; its jobs are published after that.
 */
@Injectable()
export class CaseRunner {
  private readonly logger = new Logger(CaseRunner.name);
  private readonly settings: EngineConfig;
  /** Step runs and look-ups of the cases that have a mailbox now, to their case. */
  private readonly aliases = new Map<string, string>();
  private readonly aliasesOf = new Map<string, string[]>();
  private readonly mailboxes = new Mailboxes<LoadedCase>((caseId) => {
    for (const alias of this.aliasesOf.get(caseId) ?? []) this.aliases.delete(alias);
    this.aliasesOf.delete(caseId);
  });

  constructor(
    private readonly repository: EngineRepository,
    private readonly catalogue: EngineCatalogue,
    private readonly relay: OutboxRelay,
    private readonly changes: CaseChanges,
    config: ConfigService<ResolvedConfig, true>,
  ) {
    this.settings = config.get('engine', { infer: true });
  }

  /** Opens a case: decided on the subject's current facts, written as a new case. */
  async open(input: OpenInput, definition: DefinitionWithDefaults): Promise<RunOutcome> {
    const facts = await this.repository.currentFacts(input.subjectId);
    const decision = openCase(input, facts, await this.environment(definition));
    if (decision.outcome !== 'changed') return { ...decision, caseId: input.caseId };
    const { committed, outbox } = await this.repository.commitCase(this.unit(decision, null, 0));
    if (!committed) throw new Error(`case ${input.caseId} could not be created`);
    this.emit(decision, null);
    await this.relay.publish(outbox);
    return { ...decision, caseId: input.caseId };
  }

  /**
   * Applies `input` to the case at `address`, in its turn. With `subjectId`, a case of another
   * subject is not found (a citizen learns nothing of others').
   */
  async run(
    address: CaseAddress,
    input: CaseInput,
    options: { subjectId?: string } = {},
  ): Promise<RunOutcome> {
    const subjectId = options.subjectId;
    let caseId =
      'caseId' in address
        ? address.caseId
        : this.aliases.get('stepRunId' in address ? address.stepRunId : address.lookupId);
    let loaded: LoadedCase | null | undefined;
    if (caseId === undefined) {
      // Only the case knows its step runs and look-ups: read it to find its mailbox.
      loaded = await this.repository.loadCase(address, subjectId);
      if (!loaded) return { outcome: 'not-found' };
      caseId = loaded.caseRecord.id;
    }
    const id = caseId;
    const { outcome, outbox } = await this.mailboxes.post(id, async (held) => {
      const start = newest(held, loaded, subjectId);
      // A state read for this input (`loaded`) is current as of its arrival; one only handed on
      // by the turn before is read again before it decides that nothing changes (see turn).
      const verified = start !== undefined && start === (loaded ?? undefined);
      const done = await this.turn(id, input, subjectId, start, verified);
      if (done.state) this.remember(id, done.state);
      return { value: done, leaves: done.state };
    });
    await this.relay.publish(outbox);
    return outcome;
  }

  /** One turn of a case: decide on the freshest state, write, and on a conflict do it again. */
  private async turn(
    caseId: string,
    input: CaseInput,
    subjectId: string | undefined,
    start: LoadedCase | undefined,
    verified: boolean,
  ): Promise<{
    outcome: RunOutcome;
    outbox: Array<{ id: string } & OutboxMessage>;
    state: LoadedCase | undefined;
  }> {
    let state = start;
    let current = verified;
    for (let attempt = 1; ; attempt += 1) {
      if (!state) {
        state = (await this.repository.loadCase({ caseId }, subjectId)) ?? undefined;
        current = true;
      }
      if (!state) return { outcome: { outcome: 'not-found' }, outbox: [], state: undefined };
      const definition = await this.catalogue.definition(state.caseRecord.definitionId);
      const decision = decide(state, input, await this.environment(definition));
      if (decision.outcome !== 'changed') {
        // A change is fenced by the revision when it commits; a decision to change nothing is
        // not. So a handed-on state is read again before such a decision stands: another process
        // may have moved the case on (a result for the attempt it dispatched would look stale).
        if (!current) {
          const fresh = (await this.repository.loadCase({ caseId }, subjectId)) ?? undefined;
          current = true;
          if (fresh?.caseRecord.revision !== state.caseRecord.revision) {
            state = fresh;
            continue;
          }
        }
        return { outcome: { ...decision, caseId }, outbox: [], state };
      }
      const previous = state.caseRecord;
      const { committed, outbox } = await this.repository.commitCase(
        this.unit(decision, previous.revision, previous.revision),
      );
      if (committed) {
        this.emit(decision, previous.status);
        return { outcome: { ...decision, caseId }, outbox, state: toLoaded(decision.state) };
      }
      if (attempt >= MAX_CONFLICT_RETRIES) {
        throw new Error(`case ${caseId} kept changing under ${String(attempt)} attempts`);
      }
      // Another process committed first: read again after a short, growing, jittered pause.
      state = undefined;
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 * attempt)));
    }
  }

  private async environment(definition: DefinitionWithDefaults): Promise<Environment> {
    const [{ catalogue, validator }, published] = await Promise.all([
      this.catalogue.catalogue(),
      this.catalogue.publishedDefinitions(),
    ]);
    return {
      definition,
      catalogue,
      validator,
      now: new Date(),
      random: Math.random,
      newId: () => uuidv7(),
      timers: {
        armAfterMs: this.settings.timerArmAfterMs,
        sweepIntervalMs: this.settings.reconcileIntervalMs,
      },
      published,
    };
  }

  /** What the store writes for a decision computed from revision `base`. */
  private unit(
    decision: Extract<Decision, { outcome: 'changed' }>,
    expectedRevision: number | null,
    base: number,
  ): CaseUnit {
    const { state, events, effects, writes } = decision;
    return {
      caseRecord: state.caseRecord,
      expectedRevision,
      runs: writes.runs,
      events: events.map((e, i) => ({ ...e, seq: base + i + 1 })),
      facts: writes.facts,
      newLookups: writes.newLookups,
      changedLookups: writes.changedLookups,
      disclosures: effects.flatMap((e) => (e.type === 'disclose' ? [e.disclosure] : [])),
      messages: effects.flatMap((e) => (e.type === 'notify' ? [e.message] : [])),
      outbox: effects.flatMap(toOutbox),
    };
  }

  private emit(
    decision: Extract<Decision, { outcome: 'changed' }>,
    previous: CaseState['caseRecord']['status'] | null,
  ): void {
    const { state, events } = decision;
    const caseId = state.caseRecord.id;
    for (const event of events) {
      // Paths only: the refused values may be personal data.
      if (event.type === 'result-refused') {
        const stepRunId = state.runs.find((r) => r.stepId === event.stepId)?.id;
        const problems = event.data.problems.map((p) => p.path);
        this.logger.warn({ caseId, stepRunId, problems }, 'result refused');
      } else if (event.type === 'lookup-result-refused') {
        const { lookupId, problems } = event.data;
        const paths = problems.map((p) => p.path);
        this.logger.warn({ caseId, lookupId, problems: paths }, 'look-up answer partly refused');
      }
    }
    this.changes.emit({
      caseRecord: state.caseRecord,
      previousStatus: previous,
      events,
      steps: state.runs,
      committedAt: new Date(),
    });
  }

  /** Inputs that name a step run or look-up of a case with a mailbox go to it without a read. */
  private remember(caseId: string, state: LoadedCase): void {
    const ids = [...state.runs.map((r) => r.id), ...state.lookups.map((l) => l.id)];
    for (const id of ids) this.aliases.set(id, caseId);
    this.aliasesOf.set(caseId, ids);
  }
}

/**
 * The state an input's turn starts from: what the turn before it left, or what was read to find
 * the case, whichever is newer (another process may have committed in between). A state of
 * another subject is none: the case is read again with the subject's filter.
 */
function newest(
  held: LoadedCase | undefined,
  loaded: LoadedCase | null | undefined,
  subjectId: string | undefined,
): LoadedCase | undefined {
  const candidates = [held, loaded ?? undefined].filter(
    (s): s is LoadedCase =>
      s !== undefined && (subjectId === undefined || s.caseRecord.subjectId === subjectId),
  );
  return candidates.reduce<LoadedCase | undefined>(
    (best, s) =>
      best === undefined || s.caseRecord.revision > best.caseRecord.revision ? s : best,
    undefined,
  );
}

function toLoaded(state: CaseState): LoadedCase {
  return {
    caseRecord: state.caseRecord,
    runs: [...state.runs],
    lookups: [...state.lookups],
    facts: new Map(state.facts),
  };
}

/** The outbox row of an effect that is a job. */
function toOutbox(effect: Effect): OutboxMessage[] {
  switch (effect.type) {
    case 'dispatch-step':
      return [
        {
          queue: agencyQueueName(effect.agency),
          jobName: STEP_EXECUTE,
          jobId: effect.jobId,
          payload: effect.job,
          availableAt: effect.availableAt,
        },
      ];
    case 'request-lookup':
      return [
        {
          queue: agencyQueueName(effect.agency),
          jobName: FACT_LOOKUP,
          jobId: effect.jobId,
          payload: effect.job,
          availableAt: effect.availableAt,
        },
      ];
    case 'cancel-step':
      return [
        {
          queue: agencyQueueName(effect.agency),
          jobName: STEP_CANCEL,
          jobId: effect.jobId,
          payload: effect.job,
        },
      ];
    case 'arm-timer':
      return [deadlineTimer({ id: effect.job.stepRunId, caseId: effect.job.caseId }, effect.at)];
    default:
      return [];
  }
}
