import { Injectable, Logger } from '@nestjs/common';
import type { CaseEvent, CaseRecord, CaseStatus, StepRunRecord } from './engine.types.js';

/** One committed change to one case: what it was, what it became, and the events it appended. */
export interface CaseChange {
  caseRecord: Readonly<CaseRecord>;
  /** The status before the change; null when the change opened the case. */
  previousStatus: CaseStatus | null;
  events: readonly CaseEvent[];
  /** Every step run of the case as the change left it. */
  steps: readonly Readonly<StepRunRecord>[];
  committedAt: Date;
}

export type CaseChangeListener = (change: CaseChange) => void;

/**
 * In-process notification of changes to cases, after they commit: metrics, and anything that
 * must learn of a change without polling, subscribe here. A listener runs synchronously after
 * the commit and must not throw or block (what it throws is logged and dropped): the change is
 * already durable, and Postgres stays the only truth (a missed notification loses nothing).
 */
@Injectable()
export class CaseChanges {
  private readonly logger = new Logger(CaseChanges.name);
  private readonly listeners = new Set<CaseChangeListener>();

  subscribe(listener: CaseChangeListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  emit(change: CaseChange): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (error) {
        this.logger.warn(
          { err: error, caseId: change.caseRecord.id },
          'case change listener failed',
        );
      }
    }
  }
}
