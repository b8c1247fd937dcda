import { queuedAgencies } from '#workflow';
import { type DynamicModule, Module } from '@nestjs/common';
import { AgencyDirectory } from '../observability/monitored-queues.js';
import { AdminCatalogueController } from './admin-catalogue.controller.js';
import { AdminLifeEventsController } from './admin-life-events.controller.js';
import { CatalogueSeedService } from './catalogue-seed.service.js';
import { CatalogueService } from './catalogue.service.js';
import { DefinitionsRepository } from './definitions.repository.js';
import { DefinitionsService } from './definitions.service.js';

/**
 * Life-event definitions and the catalogue. Every role seeds the catalogue at start-up (under a
 * lock, idempotently) so no role ever runs against an empty one; only `api` serves the admin API.
 * It also tells the monitored queues (metrics, queue dashboard) which agencies there are.
 */
@Module({})
export class DefinitionsModule {
  static forRoot(options: { api: boolean }): DynamicModule {
    return {
      module: DefinitionsModule,
      global: true,
      controllers: options.api ? [AdminLifeEventsController, AdminCatalogueController] : [],
      providers: [
        DefinitionsRepository,
        DefinitionsService,
        CatalogueService,
        CatalogueSeedService,
        {
          provide: AgencyDirectory,
          inject: [DefinitionsRepository],
          useFactory: (definitions: DefinitionsRepository): AgencyDirectory => ({
            // The agencies with a queue: each onboarded instance of an agency of many.
            agencyCodes: async () =>
              queuedAgencies((await definitions.listEntries('agency')).map((a) => a.body)).map(
                (a) => a.code,
              ),
          }),
        },
      ],
      exports: [
        DefinitionsRepository,
        DefinitionsService,
        CatalogueService,
        CatalogueSeedService,
        AgencyDirectory,
      ],
    };
  }
}
