import { setTimeout as sleep } from 'node:timers/promises';
import { LeoClient, workloadAnswers, type CitizenFlowTimings } from './client.js';
import { livePersonnummer } from './personnummer.js';

/**
 * Drives the standard workload through the citizen API: burst (everything at once, with bounded
 * client concurrency) or rate (open-loop arrivals on a fixed schedule).
 */

export interface PlannedCase {
  index: number;
  personalNumber: string;
  businessName: string;
  token: string;
}

export interface CaseOutcome {
  index: number;
  /** Epoch ms: when the case was due to arrive (burst: when the burst began). */
  scheduledAt: number;
  /** Epoch ms: when its first request was sent. */
  startedAt: number;
  timings?: CitizenFlowTimings;
  error?: string;
}

export interface PhaseResult {
  /** Epoch ms: the first arrival (the start of the measured window). */
  startedAt: number;
  /** Epoch ms: when the last submit was answered. */
  lastSubmitAt: number;
  outcomes: CaseOutcome[];
}

/** Runs `work` over `items` with at most `concurrency` in flight. */
export async function pool<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next] as T;
      next += 1;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane));
}

/**
 * Citizens for cases `from`…`from + count - 1` of this database, each with a unique test
 * personnummer and business name, signed in beforehand (outside the measured window: in
 * production tokens come from the e-ID broker, not from leo).
 */
export async function planCases(
  client: LeoClient,
  runTag: string,
  from: number,
  count: number,
  concurrency: number,
): Promise<PlannedCase[]> {
  const planned: PlannedCase[] = Array.from({ length: count }, (_, k) => ({
    index: from + k,
    personalNumber: livePersonnummer(from + k),
    businessName: `Bänkföretag ${runTag}-${String(from + k).padStart(6, '0')}`,
    token: '',
  }));
  await pool(planned, concurrency, async (c) => {
    c.token = await client.citizenToken(c.personalNumber);
  });
  return planned;
}

async function runCase(
  client: LeoClient,
  c: PlannedCase,
  scheduledAt: number,
): Promise<CaseOutcome> {
  const startedAt = Date.now();
  try {
    const timings = await client.citizenFlow(c.token, workloadAnswers(c.businessName));
    return { index: c.index, scheduledAt, startedAt, timings };
  } catch (error) {
    return {
      index: c.index,
      scheduledAt,
      startedAt,
      error: error instanceof Error ? error.message : String(error),
    };
  }
}

/** All cases at once, `concurrency` citizens in flight at a time. */
export async function burst(
  client: LeoClient,
  cases: readonly PlannedCase[],
  concurrency: number,
): Promise<PhaseResult> {
  const startedAt = Date.now();
  const outcomes: CaseOutcome[] = [];
  let lastSubmitAt = startedAt;
  await pool(cases, concurrency, async (c) => {
    const outcome = await runCase(client, c, startedAt);
    lastSubmitAt = Math.max(lastSubmitAt, Date.now());
    outcomes.push(outcome);
  });
  return { startedAt, lastSubmitAt, outcomes };
}

/**
 * Open loop: case i arrives at start + i / rate whatever happened to the cases before it (a
 * slow leo does not slow the arrivals, so no coordinated omission). Its latency is measured from
 * that scheduled time, so time spent waiting for a socket or a late timer counts against leo.
 */
export async function openLoop(
  client: LeoClient,
  cases: readonly PlannedCase[],
  ratePerSecond: number,
): Promise<PhaseResult> {
  const intervalMs = 1000 / ratePerSecond;
  const startedAt = Date.now() + 20;
  const running: Array<Promise<CaseOutcome>> = [];
  let lastSubmitAt = startedAt;
  let i = 0;
  while (i < cases.length) {
    const now = Date.now();
    while (i < cases.length && startedAt + i * intervalMs <= now) {
      const scheduledAt = startedAt + i * intervalMs;
      running.push(
        runCase(client, cases[i] as PlannedCase, scheduledAt).then((o) => {
          lastSubmitAt = Math.max(lastSubmitAt, Date.now());
          return o;
        }),
      );
      i += 1;
    }
    if (i < cases.length) await sleep(Math.max(0, startedAt + i * intervalMs - Date.now()));
  }
  const outcomes = await Promise.all(running);
  return { startedAt, lastSubmitAt, outcomes };
}
