import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import {
  ApiBasicAuth,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { Roles } from '../auth/access.decorator.js';
import { CurrentPrincipal } from '../auth/current-principal.decorator.js';
import type { Principal } from '../auth/principal.js';
import { AgencyDecisionDto, DecisionAcceptedDto } from './agency-decisions.dto.js';
import { EngineService } from './engine.service.js';
import { ApiEngineUnavailable } from '../common/api-responses.js';

@ApiTags('agency')
@ApiBasicAuth('agency-credential')
@Roles('agency')
@Controller('v1/agency/decisions')
export class AgencyDecisionsController {
  constructor(private readonly engine: EngineService) {}

  @Post()
  @ApiEngineUnavailable()
  @HttpCode(200)
  @ApiOperation({
    summary: 'Report the decision on one of your steps that is awaiting a decision',
    description:
      'The same as a later result on the results queue. Only the calling agency’s own steps can be decided; ' +
      'a completed decision may set exactly the facts the step produces.',
  })
  @ApiOkResponse({ type: DecisionAcceptedDto })
  @ApiNotFoundResponse({ description: 'No step of yours with that id.' })
  @ApiConflictResponse({
    description: 'The step is not awaiting a decision (already decided, cancelled …).',
  })
  async decide(
    @Body() body: AgencyDecisionDto,
    @CurrentPrincipal() principal: Principal,
  ): Promise<DecisionAcceptedDto> {
    const agency = principal.role === 'agency' ? principal.agency : '';
    await this.engine.decide(
      agency,
      body.stepRunId,
      body.outcome === 'completed'
        ? {
            outcome: 'completed',
            produced: body.produced ?? {},
            ...(body.reference ? { reference: body.reference } : {}),
          }
        : {
            outcome: 'rejected',
            code: body.code ?? 'rejected',
            reason: body.reason ?? '',
            ...(body.reference ? { reference: body.reference } : {}),
          },
    );
    return { applied: true };
  }
}
