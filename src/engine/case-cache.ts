/** What the cache keeps of a case: enough to find it by its step runs and look-ups. */
export interface Cacheable {
  caseRecord: { id: string; status: string };
  runs: ReadonlyArray<{ id: string }>;
  lookups: ReadonlyArray<{ id: string }>;
}

const FINAL = new Set(['completed', 'failed', 'cancelled']);

/**
 * The cases a process changed last, with their subject's facts, so that the next input of a case
 * is decided without reading it (decision 0019). At most `capacity` cases, the least recently
 * used dropped first; a finished case is not kept (what reaches it after is a duplicate, and a
 * read is cheap then). Correctness never rests on the cache: every write is conditional on the
 * case's revision and its subject's facts revision, so a stale entry costs one failed write and
 * a read, never a wrong change. Step run and look-up ids lead to their case, so a result finds
 * its case's mailbox without a read.
 */
export class CaseCache<S extends Cacheable> {
  private readonly entries = new Map<string, S>();
  private readonly aliases = new Map<string, string>();

  constructor(
    private readonly capacity: number,
    /** Told of each case it no longer keeps. */
    private readonly evicted: (state: S) => void = () => undefined,
  ) {}

  /** The kept state, without making it the most recently used (for reads). */
  peek(caseId: string): S | undefined {
    return this.entries.get(caseId);
  }

  get(caseId: string): S | undefined {
    const state = this.entries.get(caseId);
    if (state) {
      // Most recently used last: a Map keeps insertion order.
      this.entries.delete(caseId);
      this.entries.set(caseId, state);
    }
    return state;
  }

  /** The case a step run or look-up of a kept case belongs to. */
  caseOf(id: string): string | undefined {
    return this.aliases.get(id);
  }

  set(state: S): void {
    const caseId = state.caseRecord.id;
    if (this.capacity === 0 || FINAL.has(state.caseRecord.status)) {
      this.delete(caseId);
      return;
    }
    this.entries.delete(caseId);
    this.entries.set(caseId, state);
    for (const { id } of [...state.runs, ...state.lookups]) this.aliases.set(id, caseId);
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.delete(oldest);
    }
  }

  /** Forgets every kept case whose id `which` picks. */
  deleteWhere(which: (caseId: string) => boolean): void {
    for (const caseId of [...this.entries.keys()]) if (which(caseId)) this.delete(caseId);
  }

  delete(caseId: string): void {
    const state = this.entries.get(caseId);
    if (!state) return;
    this.entries.delete(caseId);
    for (const { id } of [...state.runs, ...state.lookups]) this.aliases.delete(id);
    this.evicted(state);
  }
}
