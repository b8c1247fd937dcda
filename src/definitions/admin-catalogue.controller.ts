import { Body, Controller, Get, Param, Put } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBody,
  ApiConflictResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiUnprocessableEntityResponse,
} from '@nestjs/swagger';
import { Roles } from '../auth/access.decorator.js';
import { AgencyCodeParam, FactKeyParam } from '../common/params.js';
import { CurrentPrincipal } from '../auth/current-principal.decorator.js';
import type { Principal } from '../auth/principal.js';
import { CatalogueService } from './catalogue.service.js';
import {
  CatalogueEntryDto,
  CatalogueRevisionDto,
  entryView,
  revisionView,
} from './definitions.dto.js';
import { DefinitionsRepository } from './definitions.repository.js';

@ApiTags('admin: catalogue')
@Roles('admin')
@Controller('v1/admin')
export class AdminCatalogueController {
  constructor(
    private readonly catalogue: CatalogueService,
    private readonly repository: DefinitionsRepository,
  ) {}

  @Get('fact-types')
  @ApiOperation({ summary: 'The fact catalogue' })
  @ApiOkResponse({ type: [CatalogueEntryDto] })
  async factTypes(): Promise<CatalogueEntryDto[]> {
    return (await this.catalogue.listFactTypes()).map(entryView);
  }

  @Get('fact-types/:key')
  @ApiOkResponse({ type: CatalogueEntryDto })
  async factType(@Param('key', FactKeyParam) key: string): Promise<CatalogueEntryDto> {
    return entryView(await this.catalogue.factType(key));
  }

  @Get('fact-types/:key/revisions')
  @ApiOperation({ summary: 'Every revision of a fact type: who changed it to what, when' })
  @ApiOkResponse({ type: [CatalogueRevisionDto] })
  async factTypeRevisions(
    @Param('key', FactKeyParam) key: string,
  ): Promise<CatalogueRevisionDto[]> {
    await this.catalogue.factType(key);
    return (await this.repository.listCatalogueRevisions('fact-type', key)).map(revisionView);
  }

  @Put('fact-types/:key')
  @ApiOperation({ summary: 'Create or replace a fact type (same format as config/facts.yaml)' })
  @ApiBody({ schema: { type: 'object', additionalProperties: true } })
  @ApiOkResponse({ type: CatalogueEntryDto })
  @ApiConflictResponse({ description: 'The change would make a published life event invalid.' })
  async putFactType(
    @Param('key', FactKeyParam) key: string,
    @Body() body: unknown,
    @CurrentPrincipal() principal: Principal,
  ): Promise<CatalogueEntryDto> {
    return entryView(await this.catalogue.putFactType(key, body, principal.subject));
  }

  @Get('agencies')
  @ApiOperation({ summary: 'The agencies, their actions and lookups' })
  @ApiOkResponse({ type: [CatalogueEntryDto] })
  async agencies(): Promise<CatalogueEntryDto[]> {
    return (await this.catalogue.listAgencies()).map(entryView);
  }

  @Get('agencies/:code')
  @ApiOkResponse({ type: CatalogueEntryDto })
  async agency(@Param('code', AgencyCodeParam) code: string): Promise<CatalogueEntryDto> {
    return entryView(await this.catalogue.agency(code));
  }

  @Get('agencies/:code/revisions')
  @ApiOkResponse({ type: [CatalogueRevisionDto] })
  async agencyRevisions(
    @Param('code', AgencyCodeParam) code: string,
  ): Promise<CatalogueRevisionDto[]> {
    await this.catalogue.agency(code);
    return (await this.repository.listCatalogueRevisions('agency', code)).map(revisionView);
  }

  @Put('agencies/:code')
  @ApiOperation({
    summary: 'Create or replace an agency (same format as config/agencies.yaml)',
    description:
      "Who serves it (`adapter`: `mock` or `external`) takes effect within seconds, with no restart. An action may carry a `mock`: how leo's mock answers it (`requires`, `produce` with one rule per produced fact: `value`, `from`, `generate` or `template`; `latencyMs`, `decidedAfter`, `refusal`). See decision 0023.",
  })
  @ApiBody({ schema: { type: 'object', additionalProperties: true } })
  @ApiOkResponse({ type: CatalogueEntryDto })
  @ApiBadRequestResponse({ description: 'validation-failed: each field that is wrong, and why.' })
  @ApiUnprocessableEntityResponse({
    description:
      "catalogue-inconsistent: the entry does not fit the facts; mock-values-invalid: the action's mock would make values its facts' schemas refuse.",
  })
  @ApiConflictResponse({ description: 'The change would make a published life event invalid.' })
  async putAgency(
    @Param('code', AgencyCodeParam) code: string,
    @Body() body: unknown,
    @CurrentPrincipal() principal: Principal,
  ): Promise<CatalogueEntryDto> {
    return entryView(await this.catalogue.putAgency(code, body, principal.subject));
  }
}
