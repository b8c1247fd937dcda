import { Module } from '@nestjs/common';
import { MOCK_RANDOM, MockAgenciesService } from './mock-agencies.service.js';
import { MockLedgerRepository } from './mock-ledger.repository.js';

/**
 * The mock agencies (role `adapters`, and `all`): one adapter-SDK worker per agency of
 * config/agencies.yaml with `adapter: mock`, on leo's Redis and queue prefix, keeping their
 * ledgers in Postgres. Closed on shutdown after their jobs in flight have answered.
 */
@Module({
  providers: [
    MockLedgerRepository,
    MockAgenciesService,
    { provide: MOCK_RANDOM, useValue: Math.random },
  ],
  exports: [MockLedgerRepository, MockAgenciesService],
})
export class AdaptersModule {}
