import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import type {
  CaseStatus,
  FactRecordSource,
  MessageKind,
  MessageTemplate,
} from '../engine/engine.types.js';

/** A keyset position: the (time, id) of the last item of the previous page. */
export interface Position {
  at: Date;
  id: string;
}

export interface CaseListItem {
  id: string;
  lifeEventKey: string;
  definitionVersion: number;
  status: CaseStatus;
  createdAt: Date;
  updatedAt: Date;
  submittedAt: Date | null;
  finishedAt: Date | null;
}

export interface CaseEventRow {
  seq: number;
  type: string;
  stepId: string | null;
  data: Record<string, unknown>;
  createdAt: Date;
}

export interface FactHistoryRow {
  id: string;
  factKey: string;
  value: unknown;
  source: FactRecordSource;
  agency: string | null;
  caseId: string | null;
  stepId: string | null;
  lookupId: string | null;
  supersedes: string | null;
  createdAt: Date;
  /** The disclosures that sent this record: to which agency, for which case and step, when. */
  sentTo: Array<{ agency: string; caseId: string; stepId: string | null; at: string }>;
}

export interface DisclosureRow {
  id: string;
  caseId: string;
  lifeEventKey: string;
  agency: string;
  stepId: string | null;
  action: string | null;
  lookup: boolean;
  factKeys: string[];
  factRecordIds: string[];
  basis: string;
  createdAt: Date;
}

export interface MessageRow {
  id: string;
  caseId: string | null;
  stepId: string | null;
  sender: string;
  kind: MessageKind;
  template: MessageTemplate;
  params: Record<string, unknown>;
  createdAt: Date;
  readAt: Date | null;
}

/**
 * What a citizen reads about themselves: their cases, the history of their fact records with
 * who received each, their disclosure log and their messages. Every query is bound to one
 * subject: a citizen's reads never reach another's rows (invariant 7).
 */
@Injectable()
export class CitizenRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** What a citizen's `Idempotency-Key` (by digest) was first used with, if it was. */
  async idempotentRequest(
    subjectId: string,
    keySha256: string,
  ): Promise<{ requestSha256: string; caseId: string } | undefined> {
    const rows = await this.dataSource.query<Array<{ request_sha256: string; case_id: string }>>(
      `SELECT request_sha256, case_id FROM case_idempotency_keys
        WHERE subject_id = $1 AND key_sha256 = $2`,
      [subjectId, keySha256],
    );
    const row = rows[0];
    return row && { requestSha256: row.request_sha256, caseId: row.case_id };
  }

  /** Records what a key was used with (the first record stands). */
  async recordIdempotentRequest(
    subjectId: string,
    keySha256: string,
    requestSha256: string,
    caseId: string,
  ): Promise<void> {
    await this.dataSource.query(
      `INSERT INTO case_idempotency_keys (subject_id, key_sha256, request_sha256, case_id)
       VALUES ($1, $2, $3, $4) ON CONFLICT (subject_id, key_sha256) DO NOTHING`,
      [subjectId, keySha256, requestSha256, caseId],
    );
  }

  async cases(
    subjectId: string,
    after: Position | undefined,
    limit: number,
  ): Promise<CaseListItem[]> {
    const rows = await this.dataSource.query<
      Array<{
        id: string;
        life_event_key: string;
        definition_version: number;
        status: CaseStatus;
        created_at: Date;
        updated_at: Date;
        submitted_at: Date | null;
        finished_at: Date | null;
      }>
    >(
      `SELECT id, life_event_key, definition_version, status, created_at, updated_at, submitted_at,
              finished_at
         FROM cases
        WHERE subject_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
        ORDER BY created_at DESC, id DESC
        LIMIT $4`,
      [subjectId, after?.at ?? null, after?.id ?? null, limit],
    );
    return rows.map((r) => ({
      id: r.id,
      lifeEventKey: r.life_event_key,
      definitionVersion: r.definition_version,
      status: r.status,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      submittedAt: r.submitted_at,
      finishedAt: r.finished_at,
    }));
  }

  async eventsAfter(caseId: string, seq: number, limit = 500): Promise<CaseEventRow[]> {
    const rows = await this.dataSource.query<
      Array<{
        seq: number;
        type: string;
        step_id: string | null;
        data: Record<string, unknown>;
        created_at: Date;
      }>
    >(
      `SELECT seq, type, step_id, data, created_at FROM case_events
        WHERE case_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
      [caseId, seq, limit],
    );
    return rows.map((r) => ({
      seq: r.seq,
      type: r.type,
      stepId: r.step_id,
      data: r.data,
      createdAt: r.created_at,
    }));
  }

  /** Every fact record of the subject, newest first, each with the disclosures that sent it. */
  async factHistory(subjectId: string, factKey?: string): Promise<FactHistoryRow[]> {
    const rows = await this.dataSource.query<
      Array<{
        id: string;
        fact_key: string;
        value: unknown;
        source: FactRecordSource;
        agency: string | null;
        case_id: string | null;
        step_id: string | null;
        lookup_id: string | null;
        supersedes: string | null;
        created_at: Date;
        sent_to: FactHistoryRow['sentTo'] | null;
      }>
    >(
      `SELECT f.id, f.fact_key, f.value, f.source, f.agency, f.case_id, s.step_id, f.lookup_id,
              f.supersedes, f.created_at,
              (SELECT jsonb_agg(jsonb_build_object('agency', d.agency, 'caseId', d.case_id,
                        'stepId', ds.step_id, 'at', d.created_at) ORDER BY d.created_at)
                 FROM disclosures d LEFT JOIN step_runs ds ON ds.id = d.step_run_id
                WHERE d.subject_id = f.subject_id AND f.id = ANY(d.fact_record_ids)) AS sent_to
         FROM fact_records f LEFT JOIN step_runs s ON s.id = f.step_run_id
        WHERE f.subject_id = $1 AND ($2::text IS NULL OR f.fact_key = $2)
        ORDER BY f.fact_key, f.created_at DESC, f.id`,
      [subjectId, factKey ?? null],
    );
    return rows.map((r) => ({
      id: r.id,
      factKey: r.fact_key,
      value: r.value,
      source: r.source,
      agency: r.agency,
      caseId: r.case_id,
      stepId: r.step_id,
      lookupId: r.lookup_id,
      supersedes: r.supersedes,
      createdAt: r.created_at,
      sentTo: r.sent_to ?? [],
    }));
  }

  async disclosures(
    subjectId: string,
    filter: { caseId?: string; after?: Position; limit: number },
  ): Promise<DisclosureRow[]> {
    const rows = await this.dataSource.query<
      Array<{
        id: string;
        case_id: string;
        life_event_key: string;
        agency: string;
        step_id: string | null;
        action: string | null;
        lookup_id: string | null;
        fact_keys: string[];
        fact_record_ids: string[];
        basis: string;
        created_at: Date;
      }>
    >(
      `SELECT d.id::text AS id, d.case_id, c.life_event_key, d.agency, s.step_id, s.action,
              d.lookup_id, d.fact_keys, d.fact_record_ids, d.basis, d.created_at
         FROM disclosures d JOIN cases c ON c.id = d.case_id
         LEFT JOIN step_runs s ON s.id = d.step_run_id
        WHERE d.subject_id = $1 AND ($2::uuid IS NULL OR d.case_id = $2)
          AND ($3::timestamptz IS NULL OR (d.created_at, d.id) < ($3, $4::bigint))
        ORDER BY d.created_at DESC, d.id DESC
        LIMIT $5`,
      [
        subjectId,
        filter.caseId ?? null,
        filter.after?.at ?? null,
        filter.after?.id ?? null,
        filter.limit,
      ],
    );
    return rows.map((r) => ({
      id: r.id,
      caseId: r.case_id,
      lifeEventKey: r.life_event_key,
      agency: r.agency,
      stepId: r.step_id,
      action: r.action,
      lookup: r.lookup_id !== null,
      factKeys: r.fact_keys,
      factRecordIds: r.fact_record_ids,
      basis: r.basis,
      createdAt: r.created_at,
    }));
  }

  async messages(
    subjectId: string,
    filter: { unread?: boolean; caseId?: string; after?: Position; limit: number },
  ): Promise<MessageRow[]> {
    const rows = await this.dataSource.query<
      Array<{
        id: string;
        case_id: string | null;
        step_id: string | null;
        sender: string;
        kind: MessageKind;
        template: MessageTemplate;
        params: Record<string, unknown>;
        created_at: Date;
        read_at: Date | null;
      }>
    >(
      `SELECT id, case_id, step_id, sender, kind, template, params, created_at, read_at
         FROM messages
        WHERE subject_id = $1 AND (NOT $2::boolean OR read_at IS NULL)
          AND ($3::uuid IS NULL OR case_id = $3)
          AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5::uuid))
        ORDER BY created_at DESC, id DESC
        LIMIT $6`,
      [
        subjectId,
        filter.unread ?? false,
        filter.caseId ?? null,
        filter.after?.at ?? null,
        filter.after?.id ?? null,
        filter.limit,
      ],
    );
    return rows.map((r) => ({
      id: r.id,
      caseId: r.case_id,
      stepId: r.step_id,
      sender: r.sender,
      kind: r.kind,
      template: r.template,
      params: r.params,
      createdAt: r.created_at,
      readAt: r.read_at,
    }));
  }

  /** Marks one of the subject's messages read; false when the subject has no such message. */
  async markRead(subjectId: string, messageId: string): Promise<boolean> {
    // TypeORM answers an UPDATE with [rows, affected].
    const [, affected] = await this.dataSource.query<[unknown, number]>(
      `UPDATE messages SET read_at = COALESCE(read_at, now()) WHERE id = $1 AND subject_id = $2`,
      [messageId, subjectId],
    );
    return affected > 0;
  }
}
