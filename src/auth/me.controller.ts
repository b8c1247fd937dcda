import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Roles } from './access.decorator.js';
import { CurrentPrincipal } from './current-principal.decorator.js';
import { PrincipalDto } from './dev-token.dto.js';
import type { Principal } from './principal.js';

@ApiTags('session')
@Controller('v1/me')
export class MeController {
  @Get()
  @Roles('citizen', 'admin', 'agency')
  @ApiOperation({ summary: 'Who the bearer token says the caller is (no personal data is echoed)' })
  @ApiOkResponse({ type: PrincipalDto })
  me(@CurrentPrincipal() principal: Principal): PrincipalDto {
    return {
      role: principal.role,
      subject: principal.subject,
      ...(principal.role === 'agency' ? { agency: principal.agency } : {}),
    };
  }
}
