import {
  Body,
  Controller,
  Get,
  Headers,
  HttpCode,
  Param,
  Post,
  Query,
  Req,
  Res,
} from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiHeader,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiProduces,
  ApiTags,
  ApiUnprocessableEntityResponse,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { idempotencyKeyOf } from './idempotency.js';
import { Roles } from '../auth/access.decorator.js';
import { CurrentPrincipal } from '../auth/current-principal.decorator.js';
import type { CitizenPrincipal, Principal } from '../auth/principal.js';
import { decodeCursor, encodeCursor, UUID_PATTERN } from '../common/cursor.js';
import { DomainError } from '../common/domain-error.js';
import { StepIdParam, UuidParam, assertStorableJson } from '../common/params.js';
import { CaseStreamService } from './case-stream.service.js';
import { CitizenRepository } from './citizen.repository.js';
import { CitizenService } from './citizen.service.js';
import {
  AnswersDto,
  CaseListDto,
  CaseViewDto,
  CitizenCancelDto,
  CompleteTaskDto,
  LifeEventSummaryDto,
  OpenCaseDto,
  PreviewDto,
  SubmitCaseDto,
} from './citizen.dto.js';
import { PageQueryDto } from '../common/page-query.dto.js';
import { ApiEngineUnavailable } from '../common/api-responses.js';

const MAX_WAIT_SECONDS = 10;
const CaseIdParam = UuidParam('id');

/** The signed-in citizen (the guard admits only citizens to these routes). */
function citizen(principal: Principal): CitizenPrincipal {
  if (principal.role !== 'citizen') {
    throw new DomainError('forbidden', 'forbidden', 'Only for citizens.');
  }
  return principal;
}

/** `Prefer: wait=N` (RFC 7240): how long the client is willing to wait, at most 10 s. */
export function preferredWait(prefer: string | undefined): number {
  const match = /(?:^|[,;\s])wait\s*=\s*"?(\d{1,6})"?/i.exec(prefer ?? '');
  return match ? Math.min(MAX_WAIT_SECONDS, Number(match[1])) : 0;
}

@ApiTags('citizen: cases')
@Roles('citizen')
@Controller('v1')
export class CitizenCasesController {
  constructor(
    private readonly citizens: CitizenService,
    private readonly repository: CitizenRepository,
    private readonly streams: CaseStreamService,
  ) {}

  @Get('life-events')
  @ApiOperation({
    summary: 'The life events you can start, with what each would ask of you today',
  })
  @ApiOkResponse({ type: [LifeEventSummaryDto] })
  async lifeEvents(@CurrentPrincipal() principal: Principal): Promise<LifeEventSummaryDto[]> {
    return this.citizens.lifeEvents(await this.citizens.subjectOf(citizen(principal)));
  }

  @Post('cases')
  @ApiEngineUnavailable()
  @ApiOperation({
    summary:
      'Start a life event: a case that reuses what is on file and looks up what agencies hold',
    description:
      'Facts on file are reused; facts an agency is the authoritative source of are looked up from it; the rest is in `resolution.questions`. With `Prefer: wait=N` (N ≤ 10) the answer waits until the look-ups are back.',
  })
  @ApiHeader({ name: 'Prefer', required: false, description: 'wait=N (seconds, at most 10)' })
  @ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description:
      'Makes a retry safe: the same key with the same request answers with the case the first made (header Idempotent-Replayed: true); with another request, 422',
  })
  @ApiCreatedResponse({ type: CaseViewDto })
  @ApiBadRequestResponse({ description: 'An answer is invalid or not yours to give' })
  @ApiNotFoundResponse({ description: 'No such published life event' })
  @ApiUnprocessableEntityResponse({
    description: 'idempotency-key-reused: the key was used with another request',
  })
  async open(
    @CurrentPrincipal() principal: Principal,
    @Body() body: OpenCaseDto,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) response: Response,
  ): Promise<CaseViewDto> {
    const who = citizen(principal);
    assertStorableJson(body.answers ?? {});
    const wait = preferredWait(prefer);
    const key = idempotencyKeyOf(idempotencyKey);
    const { view, replayed } = await this.citizens.openCase(
      who,
      await this.citizens.subjectOf(who, { create: true }),
      { lifeEvent: body.lifeEvent, answers: body.answers ?? {} },
      wait,
      key,
    );
    if (replayed) response.setHeader('Idempotent-Replayed', 'true');
    if (wait > 0) response.setHeader('Preference-Applied', `wait=${String(wait)}`);
    response.setHeader('Location', `/v1/cases/${view.id}`);
    return view;
  }

  @Get('cases')
  @ApiOperation({ summary: 'Your cases, newest first' })
  @ApiOkResponse({ type: CaseListDto })
  async list(
    @CurrentPrincipal() principal: Principal,
    @Query() query: PageQueryDto,
  ): Promise<CaseListDto> {
    const after = query.cursor ? decodeCursor(query.cursor, UUID_PATTERN) : undefined;
    if (query.cursor && !after) throw badCursor();
    const limit = query.limit ?? 50;
    const subjectId = await this.citizens.subjectOf(citizen(principal));
    const cases = await this.repository.cases(subjectId, after, limit);
    const last = cases.at(-1);
    return {
      cases: cases.map((c) => ({
        id: c.id,
        lifeEvent: c.lifeEventKey,
        version: c.definitionVersion,
        status: c.status,
        createdAt: c.createdAt.toISOString(),
        updatedAt: c.updatedAt.toISOString(),
        submittedAt: c.submittedAt?.toISOString() ?? null,
        finishedAt: c.finishedAt?.toISOString() ?? null,
      })),
      next:
        cases.length === limit && last ? encodeCursor({ at: last.createdAt, id: last.id }) : null,
    };
  }

  @Get('cases/:id')
  @ApiOperation({ summary: 'Your case: each step with its state, reference and expected decision' })
  @ApiOkResponse({ type: CaseViewDto })
  @ApiNotFoundResponse({ description: 'No such case of yours' })
  async get(
    @CurrentPrincipal() principal: Principal,
    @Param('id', CaseIdParam) id: string,
  ): Promise<CaseViewDto> {
    return this.citizens.caseView(await this.citizens.subjectOf(citizen(principal)), id);
  }

  @Post('cases/:id/answers')
  @ApiEngineUnavailable()
  @HttpCode(200)
  @ApiOperation({
    summary: 'Answer questions of an open case (or correct an answer): each value is validated',
  })
  @ApiOkResponse({ type: CaseViewDto })
  @ApiBadRequestResponse({ description: 'An answer is invalid or not yours to give' })
  @ApiConflictResponse({ description: 'The case is no longer open' })
  async answer(
    @CurrentPrincipal() principal: Principal,
    @Param('id', CaseIdParam) id: string,
    @Body() body: AnswersDto,
  ): Promise<CaseViewDto> {
    assertStorableJson(body.answers);
    return this.citizens.answer(
      await this.citizens.subjectOf(citizen(principal)),
      id,
      body.answers,
    );
  }

  @Get('cases/:id/preview')
  @ApiOperation({
    summary: 'For each agency, exactly the facts it will receive, their values and sources',
  })
  @ApiOkResponse({ type: PreviewDto })
  @ApiConflictResponse({
    description: 'resolution-pending (look-ups in flight), answers-missing, or case-not-open',
  })
  async preview(
    @CurrentPrincipal() principal: Principal,
    @Param('id', CaseIdParam) id: string,
  ): Promise<PreviewDto> {
    return this.citizens.preview(await this.citizens.subjectOf(citizen(principal)), id);
  }

  @Post('cases/:id/submit')
  @ApiEngineUnavailable()
  @HttpCode(202)
  @ApiOperation({
    summary: 'Submit with your consent to the preview named by its checksum',
    description:
      'If anything the preview showed has changed since (a value, a source, the plan), the submit is refused with 409 preview-stale and nothing is sent: preview again. Submitting again with the checksum the case was submitted with is accepted and changes nothing (a retry whose answer was lost).',
  })
  @ApiAcceptedResponse({ type: CaseViewDto })
  @ApiConflictResponse({
    description: 'preview-stale, resolution-pending, answers-missing, case-not-open',
  })
  async submit(
    @CurrentPrincipal() principal: Principal,
    @Param('id', CaseIdParam) id: string,
    @Body() body: SubmitCaseDto,
  ): Promise<CaseViewDto> {
    return this.citizens.submit(
      await this.citizens.subjectOf(citizen(principal)),
      id,
      body.previewChecksum,
    );
  }

  @Post('cases/:id/cancel')
  @ApiEngineUnavailable()
  @HttpCode(200)
  @ApiOperation({ summary: 'Cancel your case: nothing more is sent; agencies at work are told' })
  @ApiOkResponse({ type: CaseViewDto })
  @ApiConflictResponse({ description: 'The case has already finished' })
  async cancel(
    @CurrentPrincipal() principal: Principal,
    @Param('id', CaseIdParam) id: string,
    @Body() body: CitizenCancelDto,
  ): Promise<CaseViewDto> {
    return this.citizens.cancel(await this.citizens.subjectOf(citizen(principal)), id, body.reason);
  }

  @Post('cases/:id/tasks/:stepId/complete')
  @ApiEngineUnavailable()
  @HttpCode(200)
  @ApiOperation({ summary: 'Complete a task the case waits for you to do (sign, pay, upload)' })
  @ApiOkResponse({ type: CaseViewDto })
  @ApiBadRequestResponse({ description: 'A value is invalid or not one the task takes' })
  @ApiConflictResponse({ description: 'The task is not waiting for you' })
  async completeTask(
    @CurrentPrincipal() principal: Principal,
    @Param('id', CaseIdParam) id: string,
    @Param('stepId', StepIdParam) stepId: string,
    @Body() body: CompleteTaskDto,
  ): Promise<CaseViewDto> {
    assertStorableJson(body.facts);
    return this.citizens.completeTask(
      await this.citizens.subjectOf(citizen(principal)),
      id,
      stepId,
      body.facts,
    );
  }

  @Get('cases/:id/events')
  @ApiOperation({
    summary: 'Follow your case live: its history as server-sent events',
    description:
      'Each event has `id` (its sequence number), `event` (its type) and `data` (JSON). Send `Last-Event-ID` to resume. The stream ends with an `end` event once the case has finished.',
  })
  @ApiProduces('text/event-stream')
  @ApiHeader({ name: 'Last-Event-ID', required: false })
  @ApiOkResponse({ description: 'text/event-stream' })
  async events(
    @CurrentPrincipal() principal: Principal,
    @Param('id', CaseIdParam) id: string,
    @Headers('last-event-id') lastEventId: string | undefined,
    @Req() request: Request,
    @Res() response: Response,
  ): Promise<void> {
    const subjectId = await this.citizens.subjectOf(citizen(principal));
    await this.citizens.caseView(subjectId, id);
    const after = /^\d{1,9}$/.test(lastEventId ?? '') ? Number(lastEventId) : 0;
    await this.streams.stream(id, after, request, response);
  }
}

function badCursor(): DomainError {
  return new DomainError('invalid', 'validation-failed', 'The cursor is not one this API gave.', [
    { path: 'cursor', reason: 'is not a cursor from a previous page' },
  ]);
}
