import { type DynamicModule, Module } from '@nestjs/common';
import { AdminCasesController } from './admin-cases.controller.js';
import { AgencyDecisionsController } from './agency-decisions.controller.js';
import { CaseChanges } from './case-changes.js';
import { EngineRepository } from './engine.repository.js';
import { EngineService } from './engine.service.js';
import { EngineWorkers } from './engine.workers.js';
import { OutboxRelay } from './outbox.relay.js';
import { Reconciler } from './reconciler.js';

/**
 * The case engine (DefinitionsModule, global, provides the definitions it runs). Every role that changes cases (the API submits them, the engine applies
 * results) uses EngineService; only the `engine` role consumes results and sweeps the outbox.
 */
@Module({})
export class EngineModule {
  static forRoot(options: { workers: boolean; api: boolean }): DynamicModule {
    return {
      module: EngineModule,
      controllers: options.api ? [AdminCasesController, AgencyDecisionsController] : [],
      providers: [
        CaseChanges,
        EngineRepository,
        EngineService,
        OutboxRelay,
        Reconciler,
        ...(options.workers ? [EngineWorkers] : []),
      ],
      exports: [CaseChanges, EngineService, EngineRepository, Reconciler],
    };
  }
}
