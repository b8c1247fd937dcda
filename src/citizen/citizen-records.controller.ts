import { agencyByCode } from '#workflow';
import { Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import {
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { Roles } from '../auth/access.decorator.js';
import { CurrentPrincipal } from '../auth/current-principal.decorator.js';
import type { Principal } from '../auth/principal.js';
import { BIGINT_ID_PATTERN, UUID_PATTERN, decodeCursor, encodeCursor } from '../common/cursor.js';
import { DomainError } from '../common/domain-error.js';
import { UuidParam } from '../common/params.js';
import { EngineService } from '../engine/engine.service.js';
import { renderMessage } from './message-templates.js';
import { CitizenRepository } from './citizen.repository.js';
import { CitizenService } from './citizen.service.js';
import {
  DisclosurePageDto,
  DisclosureQueryDto,
  FactListDto,
  FactsQueryDto,
  MessagePageDto,
  MessageQueryDto,
} from './citizen.dto.js';

const MessageIdParam = UuidParam('id');

function badCursor(): DomainError {
  return new DomainError('invalid', 'validation-failed', 'The cursor is not one this API gave.', [
    { path: 'cursor', reason: 'is not a cursor from a previous page' },
  ]);
}

/**
 * What government holds about the signed-in citizen and what it did with it: their facts with
 * provenance and who received each value, the disclosure log, and their messages.
 */
@ApiTags('citizen: my data')
@Roles('citizen')
@Controller('v1/me')
export class CitizenRecordsController {
  constructor(
    private readonly citizens: CitizenService,
    private readonly repository: CitizenRepository,
    private readonly engine: EngineService,
  ) {}

  private async subject(principal: Principal): Promise<string> {
    if (principal.role !== 'citizen')
      throw new DomainError('forbidden', 'forbidden', 'Only for citizens.');
    return this.citizens.subjectOf(principal);
  }

  @Get('facts')
  @ApiOperation({
    summary: 'Your facts: each current value with where it came from and who received it',
    description:
      'With `history=true`, superseded records too: a correction is a new record, and the agencies that received the old value are listed on it.',
  })
  @ApiOkResponse({ type: FactListDto })
  async facts(
    @CurrentPrincipal() principal: Principal,
    @Query() query: FactsQueryDto,
  ): Promise<FactListDto> {
    const subjectId = await this.subject(principal);
    const [rows, { catalogue }] = await Promise.all([
      this.repository.factHistory(subjectId),
      this.engine.catalogue(),
    ]);
    const seen = new Set<string>();
    const facts = rows
      .map((row) => {
        const current = !seen.has(row.factKey);
        seen.add(row.factKey);
        return { row, current };
      })
      .filter(({ current }) => current || query.history === 'true')
      .map(({ row, current }) => ({
        id: row.id,
        key: row.factKey,
        label: catalogue.facts.get(row.factKey)?.label ?? { sv: row.factKey, en: row.factKey },
        value: row.value,
        source: row.source,
        agency: row.agency,
        caseId: row.caseId,
        stepId: row.stepId,
        supersedes: row.supersedes,
        current,
        recordedAt: row.createdAt.toISOString(),
        sentTo: row.sentTo.map((s) => ({ ...s, at: new Date(s.at).toISOString() })),
      }));
    return { facts };
  }

  @Get('disclosures')
  @ApiOperation({
    summary: 'Who has seen your data: every sharing, to which agency, for which case and step',
  })
  @ApiOkResponse({ type: DisclosurePageDto })
  async disclosures(
    @CurrentPrincipal() principal: Principal,
    @Query() query: DisclosureQueryDto,
  ): Promise<DisclosurePageDto> {
    const after = query.cursor ? decodeCursor(query.cursor, BIGINT_ID_PATTERN) : undefined;
    if (query.cursor && !after) throw badCursor();
    const limit = query.limit ?? 50;
    const subjectId = await this.subject(principal);
    const [rows, { catalogue }] = await Promise.all([
      this.repository.disclosures(subjectId, {
        ...(query.caseId ? { caseId: query.caseId } : {}),
        ...(after ? { after } : {}),
        limit,
      }),
      this.engine.catalogue(),
    ]);
    const last = rows.at(-1);
    return {
      disclosures: rows.map((r) => ({
        id: r.id,
        caseId: r.caseId,
        lifeEvent: r.lifeEventKey,
        agency: r.agency,
        agencyName: agencyByCode(catalogue, r.agency)?.agency.name ?? {
          sv: r.agency,
          en: r.agency,
        },
        stepId: r.stepId,
        purpose: r.lookup ? 'lookup' : 'step',
        factKeys: r.factKeys,
        factRecordIds: r.factRecordIds,
        basis: r.basis,
        at: r.createdAt.toISOString(),
      })),
      next:
        rows.length === limit && last ? encodeCursor({ at: last.createdAt, id: last.id }) : null,
    };
  }

  @Get('messages')
  @ApiOperation({ summary: 'Your messages: decisions, requests and receipts, newest first' })
  @ApiOkResponse({ type: MessagePageDto })
  async messages(
    @CurrentPrincipal() principal: Principal,
    @Query() query: MessageQueryDto,
  ): Promise<MessagePageDto> {
    const after = query.cursor ? decodeCursor(query.cursor, UUID_PATTERN) : undefined;
    if (query.cursor && !after) throw badCursor();
    const limit = query.limit ?? 50;
    const subjectId = await this.subject(principal);
    const [rows, { catalogue }, lifeEventTitle] = await Promise.all([
      this.repository.messages(subjectId, {
        unread: query.unread === 'true',
        ...(query.caseId ? { caseId: query.caseId } : {}),
        ...(after ? { after } : {}),
        limit,
      }),
      this.engine.catalogue(),
      this.citizens.lifeEventTitles(),
    ]);
    const last = rows.at(-1);
    return {
      messages: rows.map((m) => {
        const rendered = renderMessage(m.template, m.params, m.sender, {
          catalogue,
          lifeEventTitle,
        });
        return {
          id: m.id,
          caseId: m.caseId,
          stepId: m.stepId,
          sender: m.sender,
          senderName:
            m.sender === 'leo'
              ? { sv: 'leo', en: 'leo' }
              : (agencyByCode(catalogue, m.sender)?.agency.name ?? { sv: m.sender, en: m.sender }),
          kind: m.kind,
          template: m.template,
          subject: rendered.subject,
          body: rendered.body,
          params: m.params,
          at: m.createdAt.toISOString(),
          read: m.readAt !== null,
        };
      }),
      next:
        rows.length === limit && last ? encodeCursor({ at: last.createdAt, id: last.id }) : null,
    };
  }

  @Post('messages/:id/read')
  @HttpCode(204)
  @ApiOperation({ summary: 'Mark one of your messages read' })
  @ApiNoContentResponse({ description: 'Marked read (or it already was)' })
  @ApiNotFoundResponse({ description: 'No such message of yours' })
  async markRead(
    @CurrentPrincipal() principal: Principal,
    @Param('id', MessageIdParam) id: string,
  ): Promise<void> {
    if (!(await this.repository.markRead(await this.subject(principal), id))) {
      throw new DomainError('not-found', 'message-not-found', 'No such message of yours.');
    }
  }
}
