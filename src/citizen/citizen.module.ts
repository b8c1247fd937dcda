import { Module } from '@nestjs/common';
import { CaseStreamService } from './case-stream.service.js';
import { CitizenCasesController } from './citizen-cases.controller.js';
import { CitizenRecordsController } from './citizen-records.controller.js';
import { CitizenRepository } from './citizen.repository.js';
import { CitizenService } from './citizen.service.js';

/**
 * The citizen API (role `api`): life events, cases with resolution, preview and consent, live
 * case events, and the citizen's facts, disclosures and messages. Every change goes through the
 * (global) engine; its own reads are always bound to the caller's subject.
 */
@Module({
  controllers: [CitizenCasesController, CitizenRecordsController],
  providers: [CitizenRepository, CitizenService, CaseStreamService],
})
export class CitizenModule {}
