import { Injectable, Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { AGENCY_NOT_ONBOARDED } from '#agency-contract';
import {
  decide,
  openCase,
  type CaseInput,
  type CaseState,
  type Decision,
  type Environment,
  type OpenInput,
} from '#case-machine';
import type { DefinitionWithDefaults } from '#workflow';
import { LogBudget } from '../common/log-budget.js';
import { uuidv7 } from '../common/uuid.js';
import type { EngineConfig, ResolvedConfig } from '../config/config.schema.js';
import { CaseCache } from './case-cache.js';
import { CaseChanges } from './case-changes.js';
import { Mailboxes } from './case-mailbox.js';
import { fold, toUnit, type Changed } from './case-unit.js';
import { EngineCatalogue } from './engine-catalogue.js';
import { EngineRepository, type LoadedCase } from './engine.repository.js';
import type { OutboxMessage } from './engine.types.js';
import { OutboxRelay } from './outbox.relay.js';
import { PartitionLeases, type OwnerFence } from './partition-leases.js';
import { partitionOf } from './partitioning.js';
import { Metrics } from '../observability/metrics.js';

/** Tries of one input before it gives up on a case that keeps changing (never seen). */
const MAX_CONFLICT_RETRIES = 50;

/**
 * This process does not hold the case's partition (any more): the input goes to its owner
 * (CaseRouter), and nothing of it was written here.
 */
export class NotOwnerError extends Error {
  constructor(readonly caseId: string) {
    super(`this process does not own case ${caseId}'s partition`);
    this.name = 'NotOwnerError';
  }
}

/** What became of an input: its case's decision, or no such case. */
export type RunOutcome = { outcome: 'not-found' } | (Decision & { caseId: string });

type Outbox = Array<{ id: string } & OutboxMessage>;

/** An input's outcome, and the jobs its turn wrote (published by the input's caller). */
interface Turned {
  outcome: RunOutcome;
  outbox: Outbox;
}

/** An input waiting for its case's turn. */
interface Pending {
  input: CaseInput;
  subjectId: string | undefined;
  /** The case as read to find it, if it was. */
  loaded: LoadedCase | undefined;
  resolve: (turned: Turned) => void;
  reject: (error: unknown) => void;
}

/**
 * The I/O around the case machine (decision 0017). An input is posted to its case's mailbox
 * (inputs to one case take turns, inputs to different cases run together); its turn takes the
 * case from the cache, or reads it, decides, and writes the change in one statement conditional
 * on the case's revision and its subject's facts revision, with its events, fact records,
 * disclosures, messages and outbox rows. The store batches the reads and writes of turns that
 * run together (group commit, decision 0014). If another process changed the case or its
 * subject's facts first, the turn reads it again and decides again. The state a change leaves
 * is kept (decision 0019), so the next input of the case needs no read. Listeners hear of a
 * change once it is committed; its jobs are published after that.
 */
@Injectable()
export class CaseRunner {
  private readonly logger = new Logger(CaseRunner.name);
  /** Error lines about configuration faults: 10 a minute per agency and action. */
  private readonly configurationFaults = new LogBudget(10, 60_000);
  private readonly settings: EngineConfig;
  private readonly mailboxes = new Mailboxes();
  /** Inputs posted to a case's mailbox and not yet taken by a turn, in order. */
  private readonly pending = new Map<string, Pending[]>();
  private readonly cache: CaseCache<LoadedCase>;
  /**
   * Step runs of kept cases the relay has marked dispatched since (ready → dispatched: a write
   * outside the revision, decision 0019), and when: reads of a kept case show them so.
   */
  private readonly marked = new Map<string, Date>();

  constructor(
    private readonly repository: EngineRepository,
    private readonly catalogue: EngineCatalogue,
    private readonly relay: OutboxRelay,
    private readonly changes: CaseChanges,
    private readonly metrics: Metrics,
    private readonly leases: PartitionLeases,
    config: ConfigService<ResolvedConfig, true>,
  ) {
    this.settings = config.get('engine', { infer: true });
    this.cache = new CaseCache<LoadedCase>(this.settings.caseCacheSize, (state) => {
      for (const run of state.runs) this.marked.delete(run.id);
    });
    relay.onDispatched((stepRunIds) => {
      const at = new Date();
      for (const id of stepRunIds) {
        const caseId = this.cache.caseOf(id);
        const run =
          caseId === undefined ? undefined : this.cache.peek(caseId)?.runs.find((r) => r.id === id);
        // As the mark's statement: only a run still waiting to be dispatched.
        if (run?.state === 'ready') this.marked.set(id, at);
      }
    });
    leases.listen({
      releasing: (partitions) => this.letGo(partitions),
      lost: (partitions) => {
        this.forget(new Set(partitions));
      },
    });
  }

  /**
   * The case as its last change left it, for reads, when this process owns it and keeps it
   * (decision 0020: nobody else changes it), and its subject's facts have not moved on since
   * (checked with one read of the subject's revision); undefined otherwise (read Postgres).
   */
  async current(caseId: string): Promise<LoadedCase | undefined> {
    if (!this.leases.holds(partitionOf(caseId))) return undefined;
    const kept = this.cache.peek(caseId);
    if (!kept) return undefined;
    const revision = await this.repository.factsRevision(kept.caseRecord.subjectId);
    if (revision !== kept.factsRevision) return undefined;
    return {
      caseRecord: { ...kept.caseRecord },
      runs: kept.runs.map((run) => {
        const at = run.state === 'ready' ? this.marked.get(run.id) : undefined;
        return at ? { ...run, state: 'dispatched', dispatchedAt: at, updatedAt: at } : run;
      }),
      lookups: [...kept.lookups],
      facts: new Map(kept.facts),
      factsRevision: kept.factsRevision,
    };
  }

  /** Whether a case kept here waits for a look-up; undefined when it is not kept here. */
  lookupsPending(caseId: string): boolean | undefined {
    if (!this.leases.holds(partitionOf(caseId))) return undefined;
    return this.cache.peek(caseId)?.lookups.some((l) => l.state === 'pending');
  }

  /** The case a step run or look-up of a case kept here belongs to. */
  caseOf(id: string): string | undefined {
    return this.cache.caseOf(id);
  }

  /**
   * Opens a case: decided on the subject's current facts, written as a new case. If another case
   * of the subject recorded facts between the read and the write, it is decided again.
   */
  async open(input: OpenInput): Promise<RunOutcome> {
    const definition = await this.catalogue.definition(input.definitionId);
    for (let attempt = 1; ; attempt += 1) {
      const { facts, revision } = await this.repository.subjectFacts(input.subjectId);
      const decision = openCase(input, facts, await this.environment(definition));
      if (decision.outcome !== 'changed') return { ...decision, caseId: input.caseId };
      const owner = this.fence(input.caseId);
      const unit = toUnit(decision, {
        expectedRevision: null,
        revision: 0,
        factsRevision: revision,
        owner,
      });
      const { committed, outbox } = await this.repository.commitCase(unit);
      if (committed) {
        this.kept(decision, unit.subjectFence?.bump === true ? revision + 1 : revision);
        this.emit(decision, null);
        await this.relay.publish(outbox);
        return { ...decision, caseId: input.caseId };
      }
      await this.stillOwner(input.caseId, owner);
      if (attempt >= MAX_CONFLICT_RETRIES) {
        throw new Error(`case ${input.caseId} could not be created: its subject keeps changing`);
      }
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 * attempt)));
    }
  }

  /**
   * Applies `input` to case `caseId`, in its turn (`loaded`: the case as read to find it, if
   * it was). With `subjectId`, a case of another subject is not found (a citizen learns nothing
   * of others').
   */
  async run(
    caseId: string,
    input: CaseInput,
    options: { subjectId?: string; loaded?: LoadedCase } = {},
  ): Promise<RunOutcome> {
    const { subjectId, loaded } = options;
    const id = caseId;
    const done = new Promise<Turned>((resolve, reject) => {
      const queue = this.pending.get(id) ?? [];
      queue.push({ input, subjectId, loaded, resolve, reject });
      this.pending.set(id, queue);
    });
    void this.mailboxes.post(id, () => this.turn(id));
    const { outcome, outbox } = await done;
    await this.relay.publish(outbox);
    return outcome;
  }

  /**
   * One turn of a case: the inputs waiting for it are taken together (all those of the engine's
   * own, e.g. the answers of parallel steps that arrived at once; a citizen's alone, since it is
   * read with the citizen's filter), decided one after another on the newest state at hand, and
   * written as one change. Each input is told its own outcome.
   */
  private async turn(caseId: string): Promise<void> {
    // What arrives in the same turn of the event loop (a batch of answers read together) is
    // taken together.
    await new Promise((resolve) => setImmediate(resolve));
    const queue = this.pending.get(caseId) ?? [];
    const first = queue[0];
    if (!first) return;
    let taken = 1;
    if (first.subjectId === undefined) {
      while (taken < queue.length && queue[taken]?.subjectId === undefined) taken += 1;
    }
    const batch = queue.splice(0, taken);
    if (queue.length === 0) this.pending.delete(caseId);
    this.metrics.caseTurnInputs.observe(batch.length);
    try {
      const outcomes = await this.decideAndWrite(caseId, batch);
      batch.forEach((p, i) => {
        p.resolve(outcomes[i] ?? { outcome: { outcome: 'not-found' }, outbox: [] });
      });
    } catch (error) {
      this.cache.delete(caseId);
      if (batch.length === 1 || error instanceof NotOwnerError) {
        // Not the owner: none of them can be written here; each goes to the owner.
        for (const p of batch) p.reject(error);
        return;
      }
      // One input's failure is its own: the others are not held back with it (taken together
      // again, they would fail together again). Each goes alone, in order.
      for (const p of batch) {
        try {
          const [outcome] = await this.decideAndWrite(caseId, [p]);
          p.resolve(outcome ?? { outcome: { outcome: 'not-found' }, outbox: [] });
        } catch (alone) {
          this.cache.delete(caseId);
          p.reject(alone);
        }
      }
    }
  }

  /**
   * Decides `batch` on the newest state at hand (kept, or read for one of its inputs) and writes
   * what changed in one statement; on a conflict reads again and decides again.
   */
  private async decideAndWrite(caseId: string, batch: readonly Pending[]): Promise<Turned[]> {
    const subjectId = batch[0]?.subjectId;
    const loaded = batch
      .map((p) => p.loaded)
      .reduce<LoadedCase | undefined>((a, b) => newest(a, b, subjectId), undefined);
    const kept = this.cache.get(caseId);
    let state = newest(kept, loaded, subjectId);
    this.metrics.caseStateSource.inc({
      source: state !== undefined && state === kept ? 'kept' : 'read',
    });
    // A state read for a lone input is current as of its arrival; a kept one, or one read for
    // only one of several inputs, is read again before it decides that nothing changes (below).
    let current = batch.length === 1 && state !== undefined && state === loaded;
    for (let attempt = 1; ; attempt += 1) {
      if (!state) {
        state = (await this.repository.loadCase({ caseId }, subjectId)) ?? undefined;
        current = true;
      }
      if (!state) {
        // Not found for a citizen may only mean another subject's case: that case stays kept.
        if (subjectId === undefined) this.cache.delete(caseId);
        return batch.map(() => ({ outcome: { outcome: 'not-found' }, outbox: [] }));
      }
      const definition = await this.catalogue.definition(state.caseRecord.definitionId);
      const env = await this.environment(definition);
      const chain: Changed[] = [];
      const outcomes: RunOutcome[] = [];
      let on: CaseState = state;
      for (const { input } of batch) {
        const decision = decide(on, input, env);
        if (decision.outcome === 'changed') {
          chain.push(decision);
          on = decision.state;
        } else if (!current) {
          break;
        }
        outcomes.push({ ...decision, caseId });
      }
      if (outcomes.length < batch.length) {
        // A change is fenced by the revisions when it commits; a decision to change nothing is
        // not. So a kept state is read again, and decided on again, before such a decision
        // stands: another process may have moved the case on (a result for the attempt it
        // dispatched would look stale), or something outside the revisions may have changed it.
        state = (await this.repository.loadCase({ caseId }, subjectId)) ?? undefined;
        current = true;
        if (state) this.cache.set(state);
        continue;
      }
      if (chain.length === 0) return outcomes.map((outcome) => ({ outcome, outbox: [] }));
      const change = fold(chain);
      const previous = state.caseRecord;
      const owner = this.fence(caseId);
      const unit = toUnit(change, {
        expectedRevision: previous.revision,
        revision: previous.revision,
        factsRevision: state.factsRevision,
        owner,
      });
      const { committed, outbox } = await this.repository.commitCase(unit);
      if (committed) {
        const bump = unit.subjectFence?.bump === true ? 1 : 0;
        this.kept(change, state.factsRevision + bump);
        let status = previous.status;
        for (const decision of chain) {
          this.emit(decision, status);
          status = decision.state.caseRecord.status;
        }
        // The jobs are published once, by the first input that changed the case.
        const publisher = outcomes.findIndex((o) => o.outcome === 'changed');
        return outcomes.map((outcome, i) => ({ outcome, outbox: i === publisher ? outbox : [] }));
      }
      this.cache.delete(caseId);
      this.metrics.caseWritesRefused.inc();
      await this.stillOwner(caseId, owner);
      if (attempt >= MAX_CONFLICT_RETRIES) {
        throw new Error(`case ${caseId} kept changing under ${String(attempt)} attempts`);
      }
      // Another process committed first: read again after a short, growing, jittered pause.
      state = undefined;
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 * attempt)));
    }
  }

  /** The lease a change to `caseId` commits under; none held: the input goes to the owner. */
  private fence(caseId: string): OwnerFence {
    const fence = this.leases.fence(partitionOf(caseId));
    if (!fence) throw new NotOwnerError(caseId);
    return fence;
  }

  /**
   * After a refused write: whether it was refused because the partition moved on (checked with
   * Postgres). If so the input goes to the new owner.
   */
  private async stillOwner(caseId: string, fence: OwnerFence): Promise<void> {
    if (!(await this.leases.verify(fence))) throw new NotOwnerError(caseId);
  }

  /**
   * Before partitions are released (their lease still holds): waits for the turns of their
   * cases under way, then forgets their cases. Inputs that arrive meanwhile find the partition
   * no longer held once it is released, and go to its next owner.
   */
  private async letGo(partitions: readonly number[]): Promise<void> {
    const leaving = new Set(partitions);
    const deadline = Date.now() + this.settings.partitionLeaseMs / 2;
    while (
      Date.now() < deadline &&
      this.mailboxes.keys().some((id) => leaving.has(partitionOf(id)))
    ) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    this.forget(leaving);
  }

  /** Forgets the kept cases of partitions no longer held (their next owner reads them). */
  private forget(partitions: ReadonlySet<number>): void {
    this.cache.deleteWhere((caseId) => partitions.has(partitionOf(caseId)));
  }

  /** Keeps the state a committed change left, at the subject's facts revision it left. */
  private kept(decision: Changed, factsRevision: number): void {
    const { caseRecord, runs, lookups, facts } = decision.state;
    // A run the change wrote is as it says; a mark of it from before is history.
    for (const run of decision.writes.runs) this.marked.delete(run.id);
    this.cache.set({
      // A copy: the record in the decision is returned to callers.
      caseRecord: { ...caseRecord },
      runs: [...runs],
      lookups: [...lookups],
      facts: new Map(facts),
      factsRevision,
    });
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

  private emit(decision: Changed, previous: CaseState['caseRecord']['status'] | null): void {
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
      } else if (event.type === 'step-configuration-fault') {
        // An operator must act (configure the action, bind an adapter): the case waits on it.
        const { agency, action, code, attempt } = event.data;
        const budget = this.configurationFaults.take(`${agency}/${action}`);
        if (budget.log) {
          this.logger.error(
            { caseId, stepId: event.stepId, agency, action, code, attempt, alsoHeld: budget.held },
            code === AGENCY_NOT_ONBOARDED
              ? `${agency} is not onboarded: the ${action} step waits, shown as delayed, and nothing is sent until an administrator onboards it (instances.onboarded)`
              : `${agency} cannot do ${action} (${code}): configure the action's mock or the adapter; the step is retried until then and shows as delayed`,
          );
        }
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
}

/**
 * The state a turn starts from: the kept one, or the one read to find the case, whichever is
 * newer (another process may have committed in between). A state of another subject is none:
 * the case is read again with the subject's filter.
 */
function newest(
  kept: LoadedCase | undefined,
  loaded: LoadedCase | undefined,
  subjectId: string | undefined,
): LoadedCase | undefined {
  const mine = (s: LoadedCase | undefined): s is LoadedCase =>
    s !== undefined && (subjectId === undefined || s.caseRecord.subjectId === subjectId);
  if (!mine(kept)) return mine(loaded) ? loaded : undefined;
  if (!mine(loaded)) return kept;
  // On a tie the one read for this input: it is known to be current.
  const newer =
    kept.caseRecord.revision > loaded.caseRecord.revision ||
    (kept.caseRecord.revision === loaded.caseRecord.revision &&
      kept.factsRevision > loaded.factsRevision);
  return newer ? kept : loaded;
}
