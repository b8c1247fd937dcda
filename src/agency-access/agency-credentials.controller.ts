import { Body, Controller, Delete, Get, Header, HttpCode, Param, Post } from '@nestjs/common';
import {
  ApiCreatedResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import { Roles } from '../auth/access.decorator.js';
import { CurrentPrincipal } from '../auth/current-principal.decorator.js';
import type { Principal } from '../auth/principal.js';
import { AgencyCodeParam, CredentialIdParam } from '../common/params.js';
import {
  CredentialDto,
  IssueCredentialDto,
  IssuedCredentialDto,
} from './agency-credentials.dto.js';
import { AgencyCredentials, type CredentialView } from './agency-credentials.service.js';

/** CredentialDto's fields as a plain object type (what a response is), spreadable. */
type CredentialFields = Pick<CredentialDto, keyof CredentialDto>;

const toDto = (v: CredentialView): CredentialFields => ({
  id: v.id,
  agency: v.agency,
  username: v.username,
  label: v.label,
  issuedAt: v.issuedAt.toISOString(),
  issuedBy: v.issuedBy,
  revokedAt: v.revokedAt ? v.revokedAt.toISOString() : null,
  revokedBy: v.revokedBy,
});

@ApiTags('admin: agency credentials')
@Roles('admin')
@Controller('v1/admin')
export class AgencyCredentialsController {
  constructor(private readonly credentials: AgencyCredentials) {}

  @Post('agencies/:code/credentials')
  @Header('Cache-Control', 'no-store')
  @ApiOperation({
    summary: "Issue a credential for an agency's adapter",
    description:
      "A Redis user that can work only the agency's queue and answer only on its results stream, and that opens the agency's REST routes as HTTP Basic; the password is in this answer only.",
  })
  @ApiCreatedResponse({ type: IssuedCredentialDto })
  @ApiNotFoundResponse({ description: 'agency-not-found: no such agency in the catalogue.' })
  @ApiServiceUnavailableResponse({
    description: 'redis-acl-unavailable: Redis is away or does not let leo manage users.',
  })
  async issue(
    @Param('code', AgencyCodeParam) code: string,
    @Body() body: IssueCredentialDto,
    @CurrentPrincipal() principal: Principal,
  ): Promise<IssuedCredentialDto> {
    const issued = await this.credentials.issue(code, principal.subject, body.label);
    return {
      ...toDto(issued),
      password: issued.password,
      redis: issued.redis,
      prefix: issued.prefix,
      queue: issued.queue,
      resultsStream: issued.resultsStream,
    };
  }

  @Get('agencies/:code/credentials')
  @ApiOperation({ summary: "An agency's credentials, revoked ones included (never a password)" })
  @ApiOkResponse({ type: [CredentialDto] })
  async ofAgency(@Param('code', AgencyCodeParam) code: string): Promise<CredentialDto[]> {
    return (await this.credentials.list(code)).map(toDto);
  }

  @Get('agency-credentials')
  @ApiOperation({ summary: 'Every agency credential, revoked ones included (never a password)' })
  @ApiOkResponse({ type: [CredentialDto] })
  async all(): Promise<CredentialDto[]> {
    return (await this.credentials.list()).map(toDto);
  }

  @Delete('agency-credentials/:id')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Revoke a credential',
    description:
      'Its Redis user is removed at once, closing its connections, and its REST calls are refused. Revoking again changes nothing (or, after a 503, removes the user now).',
  })
  @ApiOkResponse({ type: CredentialDto })
  @ApiNotFoundResponse({ description: 'credential-not-found' })
  @ApiServiceUnavailableResponse({
    description:
      'redis-acl-unavailable: revoked, but Redis did not remove the user yet (leo removes it when it reaches Redis); revoke again to retry.',
  })
  async revoke(
    @Param('id', CredentialIdParam) id: string,
    @CurrentPrincipal() principal: Principal,
  ): Promise<CredentialDto> {
    return toDto(await this.credentials.revoke(id, principal.subject));
  }
}
