import { Body, Controller, Get, HttpCode, Param, ParseUUIDPipe, Post, Query } from '@nestjs/common';
import {
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { Roles } from '../auth/access.decorator.js';
import { CurrentPrincipal } from '../auth/current-principal.decorator.js';
import type { Principal } from '../auth/principal.js';
import { DomainError } from '../common/domain-error.js';
import { StepIdParam } from '../common/params.js';
import {
  CancelCaseDto,
  CaseDetailDto,
  CasePageDto,
  CaseSearchQueryDto,
  caseSummary,
  decodeCursor,
  encodeCursor,
  stepRunView,
} from './admin-cases.dto.js';
import { EngineRepository } from './engine.repository.js';
import { EngineService } from './engine.service.js';
import { ApiEngineUnavailable } from '../common/api-responses.js';

const CaseId = new ParseUUIDPipe({
  exceptionFactory: () =>
    new DomainError('invalid', 'validation-failed', 'The case id must be a UUID.', [
      { path: 'id', reason: 'must be a UUID' },
    ]),
});

@ApiTags('admin: cases')
@Roles('admin')
@Controller('v1/admin/cases')
export class AdminCasesController {
  constructor(
    private readonly engine: EngineService,
    private readonly repository: EngineRepository,
  ) {}

  @Get()
  @ApiOperation({
    summary: 'Search cases by status, life event, agency and creation time, newest first',
  })
  @ApiOkResponse({ type: CasePageDto })
  async search(@Query() query: CaseSearchQueryDto): Promise<CasePageDto> {
    const after = query.cursor ? decodeCursor(query.cursor) : undefined;
    if (query.cursor && !after) {
      throw new DomainError(
        'invalid',
        'validation-failed',
        'The cursor is not one this API gave.',
        [{ path: 'cursor', reason: 'is not a cursor from a previous page' }],
      );
    }
    const limit = query.limit ?? 50;
    const cases = await this.repository.searchCases({
      ...(query.status ? { status: query.status } : {}),
      ...(query.lifeEvent ? { lifeEvent: query.lifeEvent } : {}),
      ...(query.agency ? { agency: query.agency } : {}),
      ...(query.from ? { createdFrom: new Date(query.from) } : {}),
      ...(query.to ? { createdTo: new Date(query.to) } : {}),
      ...(after ? { after } : {}),
      limit,
    });
    const last = cases.at(-1);
    return {
      cases: cases.map(caseSummary),
      next: cases.length === limit && last ? encodeCursor(last) : null,
    };
  }

  @Get(':id')
  @ApiOperation({
    summary: "A case with its steps and full history (no fact values: see the citizen's own view)",
  })
  @ApiOkResponse({ type: CaseDetailDto })
  @ApiNotFoundResponse()
  async detail(@Param('id', CaseId) id: string): Promise<CaseDetailDto> {
    const found = await this.repository.findCase(id);
    if (!found) throw new DomainError('not-found', 'case-not-found', 'No such case.');
    const [steps, events] = await Promise.all([
      this.repository.stepRuns(id),
      this.repository.events(id),
    ]);
    return Object.assign(caseSummary(found), {
      steps: steps.map(stepRunView),
      history: events.map((e) => ({
        seq: e.seq,
        type: e.type,
        stepId: e.stepId,
        data: e.data,
        at: e.createdAt.toISOString(),
      })),
    });
  }

  @Post(':id/steps/:stepId/retry')
  @ApiEngineUnavailable()
  @HttpCode(200)
  @ApiOperation({ summary: 'Retry a failed step with a fresh set of attempts; the case resumes' })
  @ApiOkResponse({ type: CaseDetailDto })
  @ApiConflictResponse({
    description: 'The step has not failed, or the case does not need action.',
  })
  async retry(
    @Param('id', CaseId) id: string,
    @Param('stepId', StepIdParam) stepId: string,
    @CurrentPrincipal() principal: Principal,
  ): Promise<CaseDetailDto> {
    // Attributed to the administrator who did it, in the case's history.
    await this.engine.retryStep(id, stepId, principal.subject);
    return this.detail(id);
  }

  @Post(':id/cancel')
  @ApiEngineUnavailable()
  @HttpCode(200)
  @ApiOperation({
    summary: 'Cancel a case: nothing more starts; agencies with steps in flight are told',
  })
  @ApiOkResponse({ type: CaseDetailDto })
  @ApiConflictResponse({ description: 'The case has already finished.' })
  async cancel(
    @Param('id', CaseId) id: string,
    @Body() body: CancelCaseDto,
    @CurrentPrincipal() principal: Principal,
  ): Promise<CaseDetailDto> {
    await this.engine.cancelCase(id, body.reason, { role: 'admin', actor: principal.subject });
    return this.detail(id);
  }
}
