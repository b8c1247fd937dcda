import { Body, Controller, Delete, Get, Header, HttpCode, Param, Post, Put } from '@nestjs/common';
import {
  ApiBody,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiProduces,
  ApiTags,
  ApiUnprocessableEntityResponse,
} from '@nestjs/swagger';
import { Roles } from '../auth/access.decorator.js';
import { CurrentPrincipal } from '../auth/current-principal.decorator.js';
import type { Principal } from '../auth/principal.js';
import {
  DraftDto,
  LifeEventDocumentDto,
  LifeEventSummaryDto,
  LifeEventVersionDto,
  ValidationResultDto,
  documentView,
  draftView,
  versionView,
} from './definitions.dto.js';
import { DefinitionsService } from './definitions.service.js';
import { LifeEventKeyParam, VersionParam } from '../common/params.js';

const DEFINITION_BODY = {
  description:
    'A life-event definition as JSON, or as YAML with Content-Type application/yaml. Its schema: docs/schemas/life-event.schema.json.',
  schema: { type: 'object', additionalProperties: true },
};

@ApiTags('admin: life events')
@Roles('admin')
@Controller('v1/admin/life-events')
export class AdminLifeEventsController {
  constructor(private readonly definitions: DefinitionsService) {}

  @Get()
  @ApiOperation({ summary: 'Every life event with its versions' })
  @ApiOkResponse({ type: [LifeEventSummaryDto] })
  async list(): Promise<LifeEventSummaryDto[]> {
    const rows = await this.definitions.list();
    const byKey = new Map<string, typeof rows>();
    for (const row of rows) byKey.set(row.key, [...(byKey.get(row.key) ?? []), row]);
    return [...byKey.entries()].map(([key, versions]) => {
      const current = versions.find((v) => v.status === 'published') ?? null;
      const shown = current ?? versions[0];
      return {
        key,
        title: shown?.body.title ?? { sv: key, en: key },
        currentVersion: current?.version ?? null,
        hasDraft: versions.some((v) => v.status === 'draft'),
        versions: versions.map(versionView),
      };
    });
  }

  @Post('validate')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Validate a definition without saving it: every error, with its JSON pointer',
  })
  @ApiBody(DEFINITION_BODY)
  @ApiOkResponse({ type: ValidationResultDto })
  async validate(@Body() body: unknown): Promise<ValidationResultDto> {
    const diagnostics = await this.definitions.validate(body);
    return { valid: !diagnostics.some((d) => d.severity === 'error'), diagnostics };
  }

  @Post()
  @ApiOperation({
    summary: 'Open a draft: a new life event, or the next version of an existing one',
  })
  @ApiBody(DEFINITION_BODY)
  @ApiCreatedResponse({ type: DraftDto })
  @ApiConflictResponse({ description: 'The life event already has a draft.' })
  async createDraft(
    @Body() body: unknown,
    @CurrentPrincipal() principal: Principal,
  ): Promise<DraftDto> {
    const { row, diagnostics } = await this.definitions.createDraft(body, principal.subject);
    return draftView(row, diagnostics);
  }

  @Get(':key/versions')
  @ApiOperation({ summary: 'All versions of a life event, newest first' })
  @ApiOkResponse({ type: [LifeEventVersionDto] })
  @ApiNotFoundResponse()
  async versions(@Param('key', LifeEventKeyParam) key: string): Promise<LifeEventVersionDto[]> {
    return (await this.definitions.versions(key)).map(versionView);
  }

  @Get(':key/versions/:version')
  @ApiOperation({ summary: 'One version with its definition' })
  @ApiOkResponse({ type: LifeEventDocumentDto })
  @ApiNotFoundResponse()
  async version(
    @Param('key', LifeEventKeyParam) key: string,
    @Param('version', VersionParam) version: number,
  ): Promise<LifeEventDocumentDto> {
    return documentView(await this.definitions.version(key, version));
  }

  @Get(':key/versions/:version/diagram')
  @Header('Content-Type', 'text/vnd.mermaid; charset=utf-8')
  @ApiOperation({
    summary: 'A Mermaid flowchart of the version: agencies as lanes, conditions on edges',
  })
  @ApiProduces('text/vnd.mermaid')
  @ApiOkResponse({ description: 'Mermaid source', schema: { type: 'string' } })
  diagram(
    @Param('key', LifeEventKeyParam) key: string,
    @Param('version', VersionParam) version: number,
  ): Promise<string> {
    return this.definitions.diagram(key, version);
  }

  @Post(':key/versions/:version/deprecate')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Deprecate a published version: no new cases start on it; running ones go on',
  })
  @ApiOkResponse({ type: LifeEventVersionDto })
  async deprecate(
    @Param('key', LifeEventKeyParam) key: string,
    @Param('version', VersionParam) version: number,
    @CurrentPrincipal() principal: Principal,
  ): Promise<LifeEventVersionDto> {
    return versionView(await this.definitions.deprecate(key, version, principal.subject));
  }

  @Get(':key/draft')
  @ApiOperation({ summary: 'The open draft with its diagnostics' })
  @ApiOkResponse({ type: DraftDto })
  @ApiNotFoundResponse()
  async draft(@Param('key', LifeEventKeyParam) key: string): Promise<DraftDto> {
    const { row, diagnostics } = await this.definitions.draft(key);
    return draftView(row, diagnostics);
  }

  @Put(':key/draft')
  @ApiOperation({ summary: 'Replace the draft' })
  @ApiBody(DEFINITION_BODY)
  @ApiOkResponse({ type: DraftDto })
  async replaceDraft(
    @Param('key', LifeEventKeyParam) key: string,
    @Body() body: unknown,
  ): Promise<DraftDto> {
    const { row, diagnostics } = await this.definitions.replaceDraft(key, body);
    return draftView(row, diagnostics);
  }

  @Delete(':key/draft')
  @HttpCode(204)
  @ApiOperation({ summary: 'Discard the draft' })
  @ApiNoContentResponse()
  async discardDraft(@Param('key', LifeEventKeyParam) key: string): Promise<void> {
    await this.definitions.discardDraft(key);
  }

  @Post(':key/draft/publish')
  @HttpCode(200)
  @ApiOperation({
    summary:
      'Publish the draft as an immutable version (refused with every error if it does not validate)',
  })
  @ApiOkResponse({ type: DraftDto })
  @ApiUnprocessableEntityResponse({
    description: 'The draft has errors; `errors` lists each with its JSON pointer.',
  })
  async publish(
    @Param('key', LifeEventKeyParam) key: string,
    @CurrentPrincipal() principal: Principal,
  ): Promise<DraftDto> {
    const { row, diagnostics } = await this.definitions.publishDraft(key, principal.subject);
    return draftView(row, diagnostics);
  }
}
