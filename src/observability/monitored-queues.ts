import { Injectable } from '@nestjs/common';
import { ENGINE_RESULTS_QUEUE, agencyQueueName } from '#agency-contract';

/** Agencies are catalogue entries an administrator can add at any time: looked up again after this. */
const AGENCIES_TTL_MS = 30_000;

/**
 * The codes of the agencies in the catalogue, in code order. A port: observability imports no
 * feature folder (see eslint.config.js), so the definitions module, which owns the catalogue,
 * provides it.
 */
export abstract class AgencyDirectory {
  abstract agencyCodes(): Promise<readonly string[]>;
}

/**
 * The queues leo runs on: one per agency in the catalogue (`agency.<code>`) and the results queue.
 * Metrics and the queue dashboard watch exactly these.
 */
@Injectable()
export class MonitoredQueues {
  private cached: { names: readonly string[]; at: number } | undefined;
  private loading: Promise<readonly string[]> | undefined;

  constructor(private readonly agencies: AgencyDirectory) {}

  /** Queue names, agency queues in code order, then `engine.results`. */
  async names(): Promise<readonly string[]> {
    if (this.cached && Date.now() - this.cached.at < AGENCIES_TTL_MS) return this.cached.names;
    this.loading ??= this.load().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async load(): Promise<readonly string[]> {
    let codes;
    try {
      codes = await this.agencies.agencyCodes();
    } catch (error) {
      // Postgres away: the queues known a moment ago are still the queues, and Redis may answer.
      if (this.cached) return this.cached.names;
      throw error;
    }
    const names = [...codes.map((code) => agencyQueueName(code)), ENGINE_RESULTS_QUEUE];
    this.cached = { names, at: Date.now() };
    return names;
  }
}
