import { type DynamicModule, Module } from '@nestjs/common';
import { AdminCasesController } from './admin-cases.controller.js';
import { AgencyDecisionsController } from './agency-decisions.controller.js';
import { CaseChanges } from './case-changes.js';
import { CaseRouter } from './case-router.js';
import { CaseRunner } from './case-runner.js';
import { CaseSignals } from './case-signals.js';
import { EngineBus } from './engine-bus.js';
import { EngineCatalogue } from './engine-catalogue.js';
import { EngineRepository } from './engine.repository.js';
import { EngineService } from './engine.service.js';
import { AgencyPickupWatch } from './agency-pickup-watch.js';
import { EngineWorkers } from './engine.workers.js';
import { HousekeepingRepository } from './housekeeping.repository.js';
import { OutboxRelay } from './outbox.relay.js';
import { PartitionLeases } from './partition-leases.js';
import { Reconciler } from './reconciler.js';
import { ResultStreamConsumer } from './result-stream.consumer.js';

/**
 * The case engine (DefinitionsModule, global, provides the definitions it runs). Global: every
 * role that changes cases (the API opens and submits them, the engine applies results) uses
 * EngineService, which takes each input to the engine owning its case's partition (CaseRouter,
 * decision 0020); only the `engine` role holds partitions, consumes results, fires timers and
 * sweeps the outbox.
 */
@Module({})
export class EngineModule {
  static forRoot(options: { workers: boolean; api: boolean }): DynamicModule {
    return {
      module: EngineModule,
      global: true,
      controllers: options.api ? [AdminCasesController, AgencyDecisionsController] : [],
      providers: [
        CaseChanges,
        CaseRouter,
        CaseRunner,
        CaseSignals,
        EngineBus,
        EngineCatalogue,
        EngineRepository,
        EngineService,
        HousekeepingRepository,
        OutboxRelay,
        PartitionLeases,
        Reconciler,
        ...(options.workers ? [EngineWorkers, ResultStreamConsumer, AgencyPickupWatch] : []),
      ],
      exports: [CaseChanges, CaseSignals, EngineService, EngineRepository, Reconciler],
    };
  }
}
