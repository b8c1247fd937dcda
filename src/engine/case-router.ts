import { Injectable, Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { CaseInput, CaseRecord, OpenInput, Refusal } from '#case-machine';
import { UUID_PATTERN } from '../common/cursor.js';
import { sqlStateOf } from '../common/database-error.js';
import { DomainError, type ErrorKind, type FieldProblem } from '../common/domain-error.js';
import type { ResolvedConfig } from '../config/config.schema.js';
import { Metrics } from '../observability/metrics.js';
import { CaseRunner, NotOwnerError, type RunOutcome } from './case-runner.js';
import { EngineBus } from './engine-bus.js';
import { EngineRepository, type LoadedCase } from './engine.repository.js';
import { PartitionLeases } from './partition-leases.js';
import { partitionOf } from './partitioning.js';

/** How an input finds its case: by the case's id, or one of its step runs' or look-ups'. */
export type CaseAddress = { caseId: string } | { stepRunId: string } | { lookupId: string };

/** What became of an input, as its sender learns it (in this process or from the owner's). */
export type Outcome =
  | { outcome: 'not-found' }
  | { outcome: 'changed'; caseId: string; caseRecord: CaseRecord; overdueSteps: number }
  | { outcome: 'unchanged'; caseId: string; reason: string }
  | { outcome: 'refused'; caseId: string; refusal: Refusal };

/** An input on its way to its case's owner. */
type Forwarded =
  | { kind: 'open'; input: OpenInput }
  | { kind: 'run'; caseId: string; input: CaseInput; subjectId?: string };

/** The owner's answer to a forwarded input. */
type Answer =
  | { status: 'done'; outcome: Outcome }
  | { status: 'not-owner' }
  | {
      status: 'error';
      kind: DomainError['kind'];
      code: string;
      message: string;
      problems: DomainError['problems'];
    }
  | { status: 'failed' };

/** Pause before asking again where a partition is, while it has no owner or is moving. */
const MOVING_PAUSE_MS = 100;

/**
 * Takes every input of a case to the one engine that owns the case's partition (decision
 * 0020): run here when this process holds the partition, otherwise sent to its owner over the
 * EngineBus and its outcome brought back. A partition that is moving (released, lost, not yet
 * taken) is asked for again until LEO_COMMAND_TIMEOUT_MS; past that the input is refused as
 * unavailable (503), never left half done: an input the owner did apply after all is applied
 * once (a repeat changes nothing or is refused on its merits).
 */
@Injectable()
export class CaseRouter {
  private readonly logger = new Logger(CaseRouter.name);
  private readonly timeoutMs: number;

  constructor(
    private readonly runner: CaseRunner,
    private readonly leases: PartitionLeases,
    private readonly bus: EngineBus,
    private readonly repository: EngineRepository,
    private readonly metrics: Metrics,
    config: ConfigService<ResolvedConfig, true>,
  ) {
    this.timeoutMs = config.get('engine', { infer: true }).commandTimeoutMs;
    bus.serve((body) => this.serve(body));
  }

  /** Opens a case, at the owner of its partition. */
  open(input: OpenInput): Promise<Outcome> {
    return this.route(input.caseId, () => this.openHere(input), { kind: 'open', input });
  }

  /**
   * Opens a case here. Opening is idempotent by case id: an open the previous owner committed
   * but could not answer (it died, or lost the partition), sent again, finds its case.
   */
  private async openHere(input: OpenInput): Promise<RunOutcome | Outcome> {
    try {
      return await this.runner.open(input);
    } catch (error) {
      if (sqlStateOf(error) !== '23505') throw error;
      const loaded = await this.repository.loadCase({ caseId: input.caseId }, input.subjectId);
      if (!loaded) throw error;
      return {
        outcome: 'changed',
        caseId: input.caseId,
        caseRecord: loaded.caseRecord,
        overdueSteps: 0,
      };
    }
  }

  /**
   * Applies `input` to the case at `address`, at the owner of its partition. A case found by
   * one of its step runs or look-ups that is not kept here is read once to find it (the read
   * is the owner's state, if the owner is this process).
   */
  async run(
    address: CaseAddress,
    input: CaseInput,
    options: { subjectId?: string } = {},
  ): Promise<Outcome> {
    const subjectId = options.subjectId;
    let caseId =
      'caseId' in address
        ? address.caseId
        : this.runner.caseOf('stepRunId' in address ? address.stepRunId : address.lookupId);
    let loaded: LoadedCase | undefined;
    if (caseId === undefined) {
      loaded = (await this.repository.loadCase(address, subjectId)) ?? undefined;
      if (!loaded) return { outcome: 'not-found' };
      caseId = loaded.caseRecord.id;
    }
    const id = caseId;
    return this.route(
      id,
      () => this.runner.run(id, input, { ...options, ...(loaded ? { loaded } : {}) }),
      { kind: 'run', caseId: id, input, ...(subjectId === undefined ? {} : { subjectId }) },
    );
  }

  private async route(
    caseId: string,
    here: () => Promise<RunOutcome | Outcome>,
    forwarded: Forwarded,
  ): Promise<Outcome> {
    const partition = partitionOf(caseId);
    const deadline = Date.now() + this.timeoutMs;
    for (let attempt = 0; ; attempt += 1) {
      if (attempt > 0) {
        if (Date.now() >= deadline) break;
        await new Promise((resolve) => setTimeout(resolve, MOVING_PAUSE_MS));
      }
      if (this.leases.holds(partition)) {
        try {
          return slim(await here());
        } catch (error) {
          if (error instanceof NotOwnerError) continue;
          throw error;
        }
      }
      const owner = await this.leases.ownerOf(partition, attempt > 0);
      if (owner === undefined || owner === this.leases.member) {
        this.metrics.commandsForwarded.inc({ outcome: 'no-owner' });
        continue;
      }
      // Should the owner die (or lose the partition) with the input, its lease moves on: the
      // wait ends then, not at the deadline, and the input goes to the next owner.
      const watch = new AbortController();
      let delivery;
      try {
        delivery = await this.bus.request<unknown>(
          owner,
          forwarded,
          Math.max(1, deadline - Date.now()),
          this.ownerGone(partition, owner, watch.signal),
        );
      } finally {
        watch.abort();
      }
      if (delivery.status === 'closed') break;
      if (delivery.status !== 'answered') {
        this.metrics.commandsForwarded.inc({ outcome: delivery.status });
        continue;
      }
      const answer = parseAnswer(delivery.reply);
      if (!answer) {
        this.logger.warn({ caseId, owner }, 'malformed answer from the owner');
        throw new Error(`the owner of case ${caseId} answered something malformed`);
      }
      this.metrics.commandsForwarded.inc({ outcome: answer.status });
      switch (answer.status) {
        case 'done':
          return revive(answer.outcome);
        case 'error':
          throw new DomainError(answer.kind, answer.code, answer.message, answer.problems);
        case 'failed':
          throw new Error(`the owner of case ${caseId} failed to apply an input`);
        case 'not-owner':
          continue;
      }
    }
    this.logger.warn({ caseId, partition }, 'no engine took the input in time');
    throw new DomainError(
      'unavailable',
      'engine-unavailable',
      'The engine that runs this case is not reachable just now; try again shortly.',
    );
  }

  /**
   * Settles once `owner` no longer holds `partition` (checked every third of a lease), until
   * `stop` aborts; then it never settles (and holds no timer).
   */
  private async ownerGone(partition: number, owner: string, stop: AbortSignal): Promise<void> {
    while (!stop.aborted) {
      const waited = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          resolve(true);
        }, this.leases.leaseMs / 3);
        timer.unref();
        stop.addEventListener(
          'abort',
          () => {
            clearTimeout(timer);
            resolve(false);
          },
          { once: true },
        );
      });
      if (!waited) break;
      const now = await this.leases.ownerOf(partition, true).catch(() => owner);
      // (read afresh: it may have been aborted while the owner was read)
      if (now !== owner && !isAborted(stop)) return;
    }
    return new Promise<void>(() => undefined);
  }

  /** Serves an input another process forwarded here (if this process still owns its case). */
  private async serve(body: unknown): Promise<Answer> {
    const forwarded = parseForwarded(body);
    if (!forwarded) {
      this.logger.warn('malformed forwarded input dropped');
      return { status: 'failed' };
    }
    const caseId = forwarded.kind === 'open' ? forwarded.input.caseId : forwarded.caseId;
    if (!this.leases.holds(partitionOf(caseId))) return { status: 'not-owner' };
    try {
      const done =
        forwarded.kind === 'open'
          ? await this.openHere(forwarded.input)
          : await this.runner.run(
              caseId,
              forwarded.input,
              forwarded.subjectId === undefined ? {} : { subjectId: forwarded.subjectId },
            );
      return { status: 'done', outcome: slim(done) };
    } catch (error) {
      if (error instanceof NotOwnerError) return { status: 'not-owner' };
      if (error instanceof DomainError) {
        return {
          status: 'error',
          kind: error.kind,
          code: error.code,
          message: error.message,
          problems: error.problems,
        };
      }
      // What only a client's input can cause, as the problem filter answers it here (4xx).
      const state = sqlStateOf(error);
      if (state !== undefined && (state.startsWith('22') || state === '54001')) {
        return { status: 'error', ...INVALID_INPUT };
      }
      if (state === '23505' || state === '23001') return { status: 'error', ...CONFLICT };
      this.logger.warn({ err: error, caseId }, 'a forwarded input failed');
      return { status: 'failed' };
    }
  }
}

function isAborted(signal: AbortSignal): boolean {
  return signal.aborted;
}

const INVALID_INPUT = {
  kind: 'invalid' as const,
  code: 'invalid-input',
  message: 'The request holds a value the store cannot take.',
  problems: [],
};
const CONFLICT = {
  kind: 'conflict' as const,
  code: 'conflict',
  message: 'The request conflicts with what is already there.',
  problems: [],
};

const ERROR_KINDS = new Set<ErrorKind>([
  'invalid',
  'unauthenticated',
  'forbidden',
  'not-found',
  'conflict',
  'unprocessable',
  'unavailable',
]);
const OUTCOMES = new Set(['not-found', 'changed', 'unchanged', 'refused']);

/** The owner's answer, checked: it crossed Redis. */
function parseAnswer(value: unknown): Answer | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const a = value as Record<string, unknown>;
  switch (a.status) {
    case 'not-owner':
    case 'failed':
      return { status: a.status };
    case 'error': {
      const problems = Array.isArray(a.problems) ? a.problems : [];
      const wellFormed = problems.every(
        (p: unknown) =>
          typeof p === 'object' &&
          p !== null &&
          typeof (p as FieldProblem).path === 'string' &&
          typeof (p as FieldProblem).reason === 'string',
      );
      if (
        !ERROR_KINDS.has(a.kind as ErrorKind) ||
        typeof a.code !== 'string' ||
        typeof a.message !== 'string' ||
        !wellFormed
      ) {
        return undefined;
      }
      return {
        status: 'error',
        kind: a.kind as ErrorKind,
        code: a.code,
        message: a.message,
        problems: problems as FieldProblem[],
      };
    }
    case 'done': {
      const o = a.outcome as Record<string, unknown> | null | undefined;
      if (typeof o !== 'object' || o === null || !OUTCOMES.has(o.outcome as string))
        return undefined;
      if (o.outcome === 'changed' && (typeof o.caseRecord !== 'object' || o.caseRecord === null)) {
        return undefined;
      }
      if (o.outcome === 'refused' && (typeof o.refusal !== 'object' || o.refusal === null)) {
        return undefined;
      }
      return { status: 'done', outcome: o as unknown as Outcome };
    }
    default:
      return undefined;
  }
}

/** What a sender needs of a decision: not the whole state (it may cross the network). */
function slim(done: RunOutcome | Outcome): Outcome {
  switch (done.outcome) {
    case 'not-found':
      return { outcome: 'not-found' };
    case 'changed':
      if (!('state' in done)) return done;
      return {
        outcome: 'changed',
        caseId: done.caseId,
        caseRecord: done.state.caseRecord,
        overdueSteps: done.events.filter((e) => e.type === 'step-overdue').length,
      };
    case 'unchanged':
      return { outcome: 'unchanged', caseId: done.caseId, reason: done.reason };
    case 'refused':
      return { outcome: 'refused', caseId: done.caseId, refusal: done.refusal };
  }
}

const DATES = ['createdAt', 'updatedAt', 'submittedAt', 'finishedAt', 'consentedAt'] as const;

/** An outcome as JSON brought it: the case record's dates made dates again. */
function revive(outcome: Outcome): Outcome {
  if (outcome.outcome !== 'changed') return outcome;
  const record = { ...outcome.caseRecord };
  for (const key of DATES) {
    const value = record[key] as unknown;
    if (typeof value === 'string') (record as Record<string, unknown>)[key] = new Date(value);
  }
  return { ...outcome, caseRecord: record };
}

const INPUT_TYPES = new Set<CaseInput['type']>([
  'answer',
  'submit',
  'lookup-result',
  'step-result',
  'decision',
  'task-completed',
  'timer-fired',
  'escalate-overdue',
  'route-held',
  'cancel',
  'retry-step',
]);

/** A forwarded input's envelope, checked (its content is the case machine's to check). */
function parseForwarded(body: unknown): Forwarded | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const b = body as Record<string, unknown>;
  const input = b.input as Record<string, unknown> | null | undefined;
  if (typeof input !== 'object' || input === null) return undefined;
  if (b.kind === 'open') {
    const ok =
      input.type === 'open' &&
      typeof input.caseId === 'string' &&
      UUID_PATTERN.test(input.caseId) &&
      typeof input.subjectId === 'string' &&
      typeof input.definitionId === 'string' &&
      typeof input.personalNumber === 'string' &&
      typeof input.answers === 'object' &&
      input.answers !== null;
    return ok ? { kind: 'open', input: input as unknown as OpenInput } : undefined;
  }
  if (
    b.kind !== 'run' ||
    typeof b.caseId !== 'string' ||
    !UUID_PATTERN.test(b.caseId) ||
    (b.subjectId !== undefined && typeof b.subjectId !== 'string') ||
    !INPUT_TYPES.has(input.type as CaseInput['type'])
  ) {
    return undefined;
  }
  return {
    kind: 'run',
    caseId: b.caseId,
    input: input as unknown as CaseInput,
    ...(typeof b.subjectId === 'string' ? { subjectId: b.subjectId } : {}),
  };
}
