import { Injectable } from '@nestjs/common';
import { ENGINE_RESULTS_QUEUE, agencyQueueName } from '#agency-contract';
import { DefinitionsRepository } from '../definitions/definitions.repository.js';

/** Agencies are catalogue entries an administrator can add at any time: looked up again after this. */
const AGENCIES_TTL_MS = 30_000;

/**
 * The queues leo runs on: one per agency in the catalogue (`agency.<code>`) and the results queue.
 * Metrics and the queue dashboard watch exactly these.
 */
@Injectable()
export class MonitoredQueues {
  private cached: { names: readonly string[]; at: number } | undefined;
  private loading: Promise<readonly string[]> | undefined;

  constructor(private readonly definitions: DefinitionsRepository) {}

  /** Queue names, agency queues in code order, then `engine.results`. */
  async names(): Promise<readonly string[]> {
    if (this.cached && Date.now() - this.cached.at < AGENCIES_TTL_MS) return this.cached.names;
    this.loading ??= this.load().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async load(): Promise<readonly string[]> {
    let agencies;
    try {
      agencies = await this.definitions.listEntries('agency');
    } catch (error) {
      // Postgres away: the queues known a moment ago are still the queues, and Redis may answer.
      if (this.cached) return this.cached.names;
      throw error;
    }
    const names = [...agencies.map((a) => agencyQueueName(a.key)), ENGINE_RESULTS_QUEUE];
    this.cached = { names, at: Date.now() };
    return names;
  }
}
