import type { Queue } from 'bullmq';

/** What is seen of one agency's queue: is anyone taking its jobs? */
export interface QueuePickup {
  agency: string;
  /**
   * Seconds the oldest job due has waited to be picked up: a waiting job since it was added (or
   * its delay ran out), or a delayed one (a retry's backoff) past its time, which BullMQ moves
   * to waiting only when a worker asks for work. 0 when none is due.
   */
  oldestWaitingSeconds: number;
  /** Jobs waiting (not counting delayed ones not yet due). */
  waiting: number;
  /** Workers connected to the queue (BullMQ's client names). */
  workers: number;
}

const dueAt = (job: { timestamp: number; delay: number }): number =>
  job.timestamp + Math.max(0, job.delay);

/** Reads the pickup of `queue` (the agency's) as of `now`. */
export async function readQueuePickup(
  queue: Queue,
  agency: string,
  now: number,
): Promise<QueuePickup> {
  const [[waiting], [delayed], workers, counts] = await Promise.all([
    queue.getJobs(['waiting'], 0, 0, true),
    queue.getJobs(['delayed'], 0, 0, true),
    queue.getWorkersCount(),
    queue.getJobCounts('waiting', 'prioritized'),
  ]);
  const due = [waiting, delayed]
    .filter((job) => job !== undefined)
    .map(dueAt)
    .filter((at) => at <= now);
  const oldest = due.length > 0 ? Math.min(...due) : now;
  return {
    agency,
    oldestWaitingSeconds: Math.max(0, now - oldest) / 1000,
    waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
    workers,
  };
}

/**
 * Whether a queue is unserved: a job due has waited past the limit (nobody takes its jobs, or
 * too few adapters for its load).
 */
export const isUnserved = (pickup: QueuePickup, alertAfterMs: number): boolean =>
  pickup.oldestWaitingSeconds * 1000 >= alertAfterMs;
