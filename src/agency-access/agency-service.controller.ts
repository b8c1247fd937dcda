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
import { isUnserved, readQueuePickup } from '../queue/queue-pickup.js';
import { QueueService } from '../queue/queue.service.js';
import { AgencyCredentials } from './agency-credentials.service.js';

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
  @ApiProperty({
    description:
      'How long the oldest job due (waiting, or delayed past its time) has waited to be picked up; 0 when none.',
  })
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
    private readonly credentials: AgencyCredentials,
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
    const { agency: entry, family } = await this.catalogue.queuedAgency(code);
    const name = agencyQueueName(code);
    const [pickup, credentials] = await Promise.all([
      readQueuePickup(this.queues.queue(name).raw, code, Date.now()),
      this.credentials.list(code),
    ]);
    return {
      agency: code,
      // An entry stored before `http` was renamed reads as external.
      adapter: entry.adapter === 'mock' ? 'mock' : 'external',
      actions: entry.actions.map((action) => ({
        name: action.name,
        servedBy: actionServing(entry, action, family),
      })),
      queue: {
        name,
        workers: pickup.workers,
        waiting: pickup.waiting,
        oldestWaitingSeconds: pickup.oldestWaitingSeconds,
        unserved: isUnserved(pickup, this.alertAfterMs),
      },
      standingCredentials: credentials.filter((c) => c.revokedAt === null).length,
    };
  }
}
