import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import { Batcher, eachAloneOnFailure } from '../database/batcher.js';
import { preparedQuery } from '../database/prepared.js';
import type { FactValue, LookupJob, StepJob, StepOutcome } from '#agency-contract';
import { organisationNumberFromSequence } from '#mock-agencies';

/** How long an application that could not be decided when due waits to be tried again. */
const UNDECIDABLE_RETRY_SECONDS = 60;

export const WITHDRAWN_REASON = 'the application was withdrawn: the case was cancelled';

/** An effect an agency made: once per (agency, idempotency key). */
export interface EffectRecord {
  agency: string;
  idempotencyKey: string;
  action: string;
  stepRunId: string;
  /** The latest attempt that asked while the effect was undecided: the one a decision answers. */
  attempt: number;
  reference: string;
  /** The first answer. */
  outcome: StepOutcome;
  /** The later decision on a `pending` answer, once made. */
  decision: StepOutcome | null;
  decisionDueAt: Date | null;
}

export interface NewEffect {
  agency: string;
  job: StepJob;
  reference: string;
  outcome: StepOutcome;
  /** When a `pending` outcome is to be decided. */
  decisionDueAt?: Date;
}

/** The application an undecided effect was made on: the first request under its key. */
export interface Application {
  facts: Record<string, FactValue>;
  receivedAt: Date;
}

/**
 * The mock agencies' ledger. Tests (and the benchmark's exactly-once check) read the same
 * tables: `mock_agency_requests`, every request delivered with the facts it carried, and
 * `mock_agency_effects`, every effect made, once per key.
 */
export interface MockLedger {
  /** Records a delivered request; returns the effect already made under its key, if any. */
  recordRequest(agency: string, job: StepJob): Promise<EffectRecord | undefined>;
  /** Records a delivered look-up request (a read: it makes no effect). */
  recordLookup(agency: string, job: LookupJob): Promise<void>;
  /**
   * The new address of the latest change of address an agency granted for a person (what the
   * population register holds after a flyttanmälan), if any.
   */
  registeredMove(agency: string, personalNumber: string): Promise<FactValue | undefined>;
  /**
   * Records a delivered request and, unless one exists under its key, the effect it makes;
   * returns the effect that stands (the earlier one for a re-delivery).
   */
  recordEffect(effect: NewEffect): Promise<{ effect: EffectRecord; created: boolean }>;
  /** Moves an undecided effect's attempt forward, so its decision answers the latest attempt. */
  advanceAttempt(agency: string, idempotencyKey: string, attempt: number): Promise<void>;
  /**
   * Withdraws an undecided application (leo cancelled the case): recorded as refused with code
   * `withdrawn`, and never reported. False when there was nothing undecided to withdraw.
   */
  withdraw(agency: string, idempotencyKey: string): Promise<boolean>;
  nextOrganisationNumber(): Promise<string>;
  /**
   * Decides effects of `agencies` whose decision is due, up to `limit`, under row locks (several
   * processes may poll): `decide` gives the decision, or undefined to leave it for later.
   * Returns how many it decided.
   */
  decideDue(
    limit: number,
    agencies: readonly string[],
    decide: (effect: EffectRecord, application: Application) => Promise<StepOutcome | undefined>,
  ): Promise<number>;
  /**
   * Reports decisions made but not yet reported, up to `limit`, each marked once `report`
   * resolved; at the first report that fails the round stops, the rest left for the next.
   */
  reportDecisions(
    limit: number,
    agencies: readonly string[],
    report: (effect: EffectRecord) => Promise<void>,
  ): Promise<number>;
}

interface EffectRow {
  agency: string;
  idempotency_key: string;
  action: string;
  step_run_id: string;
  attempt: number;
  reference: string;
  outcome: StepOutcome;
  decision: StepOutcome | null;
  decision_due_at: Date | null;
}

const EFFECT_COLUMNS = `agency, idempotency_key, action, step_run_id, attempt, reference, outcome,
  decision, decision_due_at`;

function toEffect(row: EffectRow): EffectRecord {
  return {
    agency: row.agency,
    idempotencyKey: row.idempotency_key,
    action: row.action,
    stepRunId: row.step_run_id,
    attempt: row.attempt,
    reference: row.reference,
    outcome: row.outcome,
    decision: row.decision,
    decisionDueAt: row.decision_due_at,
  };
}

/** The ledger in Postgres (raw SQL on the tables of the engine migration). */
@Injectable()
export class MockLedgerRepository implements MockLedger {
  /**
   * Deliveries that arrive together are recorded together (group commit, decision 0014): one
   * statement for the requests and effects of all the agencies' workers, as an agency's own
   * ledger would take them, instead of one each.
   */
  private readonly deliveries = new Batcher<NewEffect, { effect: EffectRecord; created: boolean }>(
    (effects) => eachAloneOnFailure(effects, (batch) => this.recordEffects(batch)),
    { maxBatch: 64, maxInFlight: 2 },
  );

  /** Look-up requests that arrive together, recorded in one statement. */
  private readonly lookups = new Batcher<{ agency: string; job: LookupJob }, undefined>(
    (requests) => eachAloneOnFailure(requests, (batch) => this.recordLookups(batch)),
    { maxBatch: 64, maxInFlight: 2 },
  );

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async recordRequest(agency: string, job: StepJob): Promise<EffectRecord | undefined> {
    // One round trip: the request is recorded and the effect under its key read together.
    const rows = await preparedQuery<EffectRow>(
      this.dataSource,
      'mock-record-request',
      `WITH request AS (
         INSERT INTO mock_agency_requests
           (agency, action, idempotency_key, step_run_id, attempt, facts)
         VALUES ($1, $2, $3, $4, $5, $6::jsonb)
       )
       SELECT ${EFFECT_COLUMNS} FROM mock_agency_effects
        WHERE agency = $1 AND idempotency_key = $3`,
      [
        agency,
        job.action,
        job.idempotencyKey,
        job.stepRunId,
        job.attempt,
        JSON.stringify(job.facts),
      ],
    );
    const row = rows[0];
    return row ? toEffect(row) : undefined;
  }

  async recordLookup(agency: string, job: LookupJob): Promise<void> {
    await this.lookups.submit({ agency, job });
  }

  private async recordLookups(
    requests: readonly { agency: string; job: LookupJob }[],
  ): Promise<undefined[]> {
    await preparedQuery(
      this.dataSource,
      'mock-record-lookups',
      `INSERT INTO mock_agency_requests (agency, action, idempotency_key, lookup_id, attempt, facts)
       SELECT r.agency, 'lookup', r.idempotency_key, r.lookup_id, r.attempt, r.facts
         FROM jsonb_to_recordset($1::jsonb) AS r(ord int, agency text, idempotency_key text,
           lookup_id uuid, attempt int, facts jsonb)
        ORDER BY r.ord`,
      [
        JSON.stringify(
          requests.map(({ agency, job }, ord) => ({
            ord,
            agency,
            idempotency_key: job.idempotencyKey,
            lookup_id: job.lookupId,
            attempt: job.attempt,
            facts: job.facts,
          })),
        ),
      ],
    );
    return requests.map(() => undefined);
  }

  async registeredMove(agency: string, personalNumber: string): Promise<FactValue | undefined> {
    // The person's applications for a change of address (an index finds them by the person),
    // the latest granted one.
    const rows = await preparedQuery<{ address: FactValue }>(
      this.dataSource,
      'mock-registered-move',
      `SELECT r.facts->'move.newAddress' AS address
         FROM mock_agency_requests r
         JOIN mock_agency_effects e ON e.agency = r.agency AND e.idempotency_key = r.idempotency_key
        WHERE r.action = 'register-change-of-address' AND r.agency = $1
          AND r.facts->>'person.personalNumber' = $2
          AND COALESCE(e.decision, e.outcome)->>'outcome' = 'completed'
        ORDER BY COALESCE(e.decided_at, e.created_at) DESC, r.id LIMIT 1`,
      [agency, personalNumber],
    );
    return rows[0]?.address ?? undefined;
  }

  recordEffect(effect: NewEffect): Promise<{ effect: EffectRecord; created: boolean }> {
    return this.deliveries.submit(effect);
  }

  /**
   * One statement for many deliveries: each request, each effect that is the first under its
   * key, and for the others the effect that stands (the statement's snapshot predates its
   * inserts, so that is the earlier one). Two deliveries of one key are never in one statement:
   * the later ones are recorded after it, each in a statement of its own.
   */
  private async recordEffects(
    effects: readonly NewEffect[],
  ): Promise<Array<{ effect: EffectRecord; created: boolean }>> {
    const seen = new Set<string>();
    const first: number[] = [];
    const later: number[] = [];
    effects.forEach((e, i) => {
      const key = `${e.agency} ${e.job.idempotencyKey}`;
      (seen.has(key) ? later : first).push(i);
      seen.add(key);
    });
    const rows = await preparedQuery<EffectRow & { ord: number; created: boolean }>(
      this.dataSource,
      'mock-record-deliveries',
      `WITH d AS MATERIALIZED (
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS d(ord int, agency text,
           idempotency_key text, action text, step_run_id uuid, attempt int, reference text,
           outcome jsonb, decision_due_at timestamptz, facts jsonb)),
       request AS (
         INSERT INTO mock_agency_requests (agency, action, idempotency_key, step_run_id, attempt, facts)
         SELECT agency, action, idempotency_key, step_run_id, attempt, facts FROM d ORDER BY ord),
       made AS (
         INSERT INTO mock_agency_effects
           (agency, idempotency_key, action, step_run_id, attempt, reference, outcome, decision_due_at)
         SELECT agency, idempotency_key, action, step_run_id, attempt, reference, outcome,
           decision_due_at FROM d ORDER BY ord
         ON CONFLICT (agency, idempotency_key) DO NOTHING
         RETURNING ${EFFECT_COLUMNS})
       SELECT d.ord, true AS created, m.* FROM d
         JOIN made m ON m.agency = d.agency AND m.idempotency_key = d.idempotency_key
       UNION ALL
       SELECT d.ord, false AS created, e.agency, e.idempotency_key, e.action, e.step_run_id,
           e.attempt, e.reference, e.outcome, e.decision, e.decision_due_at
         FROM d JOIN mock_agency_effects e
           ON e.agency = d.agency AND e.idempotency_key = d.idempotency_key
        WHERE NOT EXISTS (SELECT 1 FROM made m
                           WHERE m.agency = d.agency AND m.idempotency_key = d.idempotency_key)`,
      [
        JSON.stringify(
          first.map((i) => {
            const { agency, job, reference, outcome, decisionDueAt } = effects[i] as NewEffect;
            return {
              ord: i,
              agency,
              idempotency_key: job.idempotencyKey,
              action: job.action,
              step_run_id: job.stepRunId,
              attempt: job.attempt,
              reference,
              outcome,
              decision_due_at: decisionDueAt?.toISOString() ?? null,
              facts: job.facts,
            };
          }),
        ),
      ],
    );
    const byOrd = new Map(rows.map((row) => [row.ord, row]));
    const results: Array<{ effect: EffectRecord; created: boolean } | undefined> = effects.map(
      (_, i) => {
        const row = byOrd.get(i);
        return row ? { effect: toEffect(row), created: row.created } : undefined;
      },
    );
    const inBatch = new Set(first);
    for (const [i, result] of results.entries()) {
      if (result !== undefined) continue;
      const effect = effects[i] as NewEffect;
      // Its request is recorded; only the effect that stands is still to be read.
      results[i] = inBatch.has(i)
        ? {
            effect: await this.standingEffect(effect.agency, effect.job.idempotencyKey),
            created: false,
          }
        : await this.recordOne(effect);
    }
    return results as Array<{ effect: EffectRecord; created: boolean }>;
  }

  /** A later delivery of a key already in a batch: a batch of its own, after that one. */
  private async recordOne(effect: NewEffect): Promise<{ effect: EffectRecord; created: boolean }> {
    const [recorded] = await this.recordEffects([effect]);
    if (!recorded) throw new Error('a delivery was recorded without an outcome');
    return recorded;
  }

  /**
   * The same key delivered twice at once: the insert waited for the other delivery's commit and
   * did nothing, but the statement's snapshot predates that commit, so it could not read the
   * effect that stands. A new statement (a new snapshot) can.
   */
  private async standingEffect(agency: string, idempotencyKey: string): Promise<EffectRecord> {
    const [standing] = await preparedQuery<EffectRow>(
      this.dataSource,
      'mock-effect-by-key',
      `SELECT ${EFFECT_COLUMNS} FROM mock_agency_effects WHERE agency = $1 AND idempotency_key = $2`,
      [agency, idempotencyKey],
    );
    if (!standing) throw new Error('an effect conflicted on its key but could not be read back');
    return toEffect(standing);
  }

  async advanceAttempt(agency: string, idempotencyKey: string, attempt: number): Promise<void> {
    await this.dataSource.query(
      `UPDATE mock_agency_effects SET attempt = $3
        WHERE agency = $1 AND idempotency_key = $2 AND attempt < $3 AND decision IS NULL`,
      [agency, idempotencyKey, attempt],
    );
  }

  async withdraw(agency: string, idempotencyKey: string): Promise<boolean> {
    // Recorded as decided and reported, so the poller never reports it: leo has cancelled.
    const [, count] = await this.dataSource.query<[unknown, number]>(
      `UPDATE mock_agency_effects
          SET decision = jsonb_build_object('outcome', 'rejected', 'code', 'withdrawn',
                'reason', $3::text, 'reference', reference),
              decided_at = now(), decision_reported_at = now()
        WHERE agency = $1 AND idempotency_key = $2 AND decision IS NULL
          AND decision_due_at IS NOT NULL`,
      [agency, idempotencyKey, WITHDRAWN_REASON],
    );
    return count > 0;
  }

  async nextOrganisationNumber(): Promise<string> {
    const rows = await this.dataSource.query<Array<{ value: string }>>(
      "SELECT nextval('mock_org_number_seq')::text AS value",
    );
    return organisationNumberFromSequence(Number(rows[0]?.value));
  }

  /** Decides each due application `decide` can decide now; puts off the others for a minute. */
  async decideDue(
    limit: number,
    agencies: readonly string[],
    decide: (effect: EffectRecord, application: Application) => Promise<StepOutcome | undefined>,
  ): Promise<number> {
    return this.dataSource.transaction(async (manager) => {
      const due = await manager.query<EffectRow[]>(
        `SELECT ${EFFECT_COLUMNS} FROM mock_agency_effects
          WHERE decision_due_at IS NOT NULL AND decision_reported_at IS NULL
            AND decision IS NULL AND decision_due_at <= now() AND agency = ANY($2::text[])
          ORDER BY decision_due_at
          LIMIT $1
          FOR UPDATE SKIP LOCKED`,
        [limit, agencies],
      );
      let decided = 0;
      for (const row of due) {
        const effect = toEffect(row);
        const application = await this.application(manager, effect);
        const decision = application ? await decide(effect, application) : undefined;
        if (!decision) {
          // Not decidable now (the mock is misconfigured, or lost the action): tried again in a
          // minute, so that it does not come first in every round and hold up the others.
          await manager.query(
            `UPDATE mock_agency_effects
                SET decision_due_at = now() + make_interval(secs => $3)
              WHERE agency = $1 AND idempotency_key = $2`,
            [effect.agency, effect.idempotencyKey, UNDECIDABLE_RETRY_SECONDS],
          );
          continue;
        }
        await manager.query(
          `UPDATE mock_agency_effects SET decision = $3::jsonb, decided_at = now()
            WHERE agency = $1 AND idempotency_key = $2`,
          [effect.agency, effect.idempotencyKey, JSON.stringify(decision)],
        );
        decided += 1;
      }
      return decided;
    });
  }

  async reportDecisions(
    limit: number,
    agencies: readonly string[],
    report: (effect: EffectRecord) => Promise<void>,
  ): Promise<number> {
    return this.dataSource.transaction(async (manager) => {
      const decided = await manager.query<EffectRow[]>(
        `SELECT ${EFFECT_COLUMNS} FROM mock_agency_effects
          WHERE decision_due_at IS NOT NULL AND decision_reported_at IS NULL
            AND decision IS NOT NULL AND agency = ANY($2::text[])
          ORDER BY decision_due_at
          LIMIT $1
          FOR UPDATE SKIP LOCKED`,
        [limit, agencies],
      );
      const reported: EffectRow[] = [];
      for (const row of decided) {
        try {
          await report(toEffect(row));
        } catch {
          // Left unmarked for the next round (the reporter logs why); what was reported is
          // marked below, so it is not reported again.
          break;
        }
        reported.push(row);
      }
      if (reported.length > 0) {
        await manager.query(
          `UPDATE mock_agency_effects SET decision_reported_at = now()
            WHERE (agency, idempotency_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
          [reported.map((row) => row.agency), reported.map((row) => row.idempotency_key)],
        );
      }
      return reported.length;
    });
  }

  private async application(
    manager: EntityManager,
    effect: EffectRecord,
  ): Promise<Application | undefined> {
    const rows = await manager.query<
      Array<{ facts: Record<string, FactValue>; received_at: Date }>
    >(
      `SELECT facts, received_at FROM mock_agency_requests
          WHERE agency = $1 AND idempotency_key = $2
          ORDER BY id LIMIT 1`,
      [effect.agency, effect.idempotencyKey],
    );
    const row = rows[0];
    return row ? { facts: row.facts, receivedAt: row.received_at } : undefined;
  }
}
