import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import type { Express, RequestHandler } from 'express';
import { redactJobPayload } from './job-redaction.js';

/** Where the dashboard is served: outside `/v1`, it is a page for people, not an API. */
export const QUEUE_DASHBOARD_PATH = '/admin/queues';

/**
 * bull-board over leo's queues, read-only: leo's retries and cancellations go through the engine,
 * which records them in Postgres and publishes through the outbox; retrying, promoting, adding
 * or removing a job from the board would change Redis behind the engine's back (a step answered
 * twice, a job that Postgres says was never sent). Fact values in job data are hidden.
 */
export class QueueBoard {
  private readonly server = new ExpressAdapter();
  private readonly board: ReturnType<typeof createBullBoard>;
  private names: readonly string[];

  constructor(queues: readonly Queue[]) {
    this.server.setBasePath(QUEUE_DASHBOARD_PATH);
    // Its own Express application: leo's settings do not reach it.
    (this.server.getRouter() as Express).disable('x-powered-by');
    this.names = queues.map((q) => q.name);
    this.board = createBullBoard({
      queues: queues.map(adapter),
      serverAdapter: this.server,
      options: { uiConfig: { boardTitle: 'leo queues' } },
    });
  }

  /** The board's Express application, to be called with URLs relative to its path. */
  get handler(): RequestHandler {
    return this.server.getRouter() as RequestHandler;
  }

  /** Shows these queues from now on (an agency was added to the catalogue). */
  update(queues: readonly Queue[]): void {
    const names = queues.map((q) => q.name);
    if (names.join('\n') === this.names.join('\n')) return;
    this.names = names;
    this.board.replaceQueues(queues.map(adapter));
  }
}

function adapter(queue: Queue): BullMQAdapter {
  const board = new BullMQAdapter(queue, { readOnlyMode: true });
  board.setFormatter('data', redactJobPayload);
  board.setFormatter('returnValue', redactJobPayload);
  return board;
}
