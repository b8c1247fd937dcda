import { Injectable } from '@nestjs/common';
import { agencyQueueName } from '#agency-contract';

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
 * The queues leo runs on: one per agency in the catalogue (`agency.<code>`), each answered on the
 * agency's results stream. Metrics and the queue dashboard watch exactly these.
 */
@Injectable()
export class MonitoredQueues {
  private cached: { codes: readonly string[]; at: number } | undefined;
  private loading: Promise<readonly string[]> | undefined;

  constructor(private readonly agencies: AgencyDirectory) {}

  /** Queue names, in agency code order. */
  async names(): Promise<readonly string[]> {
    return (await this.codes()).map((code) => agencyQueueName(code));
  }

  /** The agencies' codes, in order. */
  async codes(): Promise<readonly string[]> {
    if (this.cached && Date.now() - this.cached.at < AGENCIES_TTL_MS) return this.cached.codes;
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
      if (this.cached) return this.cached.codes;
      throw error;
    }
    this.cached = { codes: [...codes], at: Date.now() };
    return this.cached.codes;
  }
}
