import { Controller, Get, Param } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import {
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiProperty,
  ApiTags,
} from '@nestjs/swagger';
import { agencyQueueName } from '#agency-contract';
import { actionServing, type ActionServing } from '#mock-agencies';
import { Roles } from '../auth/access.decorator.js';
import { AgencyCodeParam } from '../common/params.js';
import type { ResolvedConfig } from '../config/config.schema.js';
import { CatalogueService } from '../definitions/catalogue.service.js';
import { DefinitionsRepository } from '../definitions/definitions.repository.js';
import { isUnserved } from '../engine/agency-pickup-watch.js';
import { QueueService } from '../queue/queue.service.js';

const SERVINGS: ActionServing[] = [
  'configured-mock',
  'built-in-mock',
  'external-adapter',
  'nobody',
];

export class ActionServingDto {
  @ApiProperty({ example: 'register-dog-owner' }) name!: string;
  @ApiProperty({
    enum: SERVINGS,
    description:
      "Who does the action's jobs: leo's mock as configured on the action, leo's built-in mock, the agency's external adapter, or nobody (publishing a life event that uses it is refused).",
  })
  servedBy!: ActionServing;
}

export class AgencyQueueDto {
  @ApiProperty({ example: 'agency.jordbruksverket' }) name!: string;
  @ApiProperty({ description: 'Workers connected to the queue now (leo’s mock, or adapters).' })
  workers!: number;
  @ApiProperty({ description: 'Jobs waiting to be picked up.' }) waiting!: number;
  @ApiProperty({ description: 'How long the oldest waiting job has been due; 0 when none.' })
  oldestWaitingSeconds!: number;
  @ApiProperty({
    description:
      'A job has waited unpicked longer than LEO_AGENCY_PICKUP_ALERT_MS: nobody serves the queue, or too few.',
  })
  unserved!: boolean;
}

export class AgencyServiceDto {
  @ApiProperty({ example: 'jordbruksverket' }) agency!: string;
  @ApiProperty({ enum: ['mock', 'external'] }) adapter!: string;
  @ApiProperty({ type: [ActionServingDto] }) actions!: ActionServingDto[];
  @ApiProperty({ type: AgencyQueueDto }) queue!: AgencyQueueDto;
  @ApiProperty({ description: 'Credentials issued to adapters of the agency and not revoked.' })
  standingCredentials!: number;
}

/**
 * How an agency is served right now, for an administrator trying a new life event or an operator
 * answering an alert (decision 0023): who does each action, who is connected to its queue, and
 * whether its jobs wait unpicked.
 */
@ApiTags('admin: agency credentials')
@Roles('admin')
@Controller('v1/admin')
export class AgencyServiceController {
  private readonly alertAfterMs: number;

  constructor(
    private readonly catalogue: CatalogueService,
    private readonly definitions: DefinitionsRepository,
    private readonly queues: QueueService,
    config: ConfigService<ResolvedConfig, true>,
  ) {
    this.alertAfterMs = config.get('engine', { infer: true }).agencyPickupAlertMs;
  }

  @Get('agencies/:code/service')
  @ApiOperation({ summary: 'How the agency is served: by whom, who is connected, what waits' })
  @ApiOkResponse({ type: AgencyServiceDto })
  @ApiNotFoundResponse({ description: 'agency-not-found: no such agency in the catalogue.' })
  async service(@Param('code', AgencyCodeParam) code: string): Promise<AgencyServiceDto> {
    const entry = (await this.catalogue.agency(code)).body;
    const name = agencyQueueName(code);
    const queue = this.queues.queue(name).raw;
    const now = Date.now();
    const [workers, counts, [oldest], credentials] = await Promise.all([
      queue.getWorkersCount(),
      queue.getJobCounts('waiting', 'prioritized'),
      queue.getJobs(['waiting'], 0, 0, true),
      this.definitions.standingCredentialCount(code),
    ]);
    const oldestWaitingSeconds = oldest
      ? Math.max(0, now - (oldest.timestamp + Math.max(0, oldest.delay))) / 1000
      : 0;
    return {
      agency: code,
      adapter: entry.adapter,
      actions: entry.actions.map((action) => ({
        name: action.name,
        servedBy: actionServing(entry, action),
      })),
      queue: {
        name,
        workers,
        waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
        oldestWaitingSeconds,
        unserved: isUnserved({ agency: code, oldestWaitingSeconds, workers }, this.alertAfterMs),
      },
      standingCredentials: credentials,
    };
  }
}
