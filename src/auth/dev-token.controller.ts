import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { createHash } from 'node:crypto';
import { DomainError } from '../common/domain-error.js';
import { Public } from './access.decorator.js';
import { DevTokenRequestDto, DevTokenResponseDto } from './dev-token.dto.js';
import { normalisePersonalNumber } from './identity-number.js';
import type { Principal } from './principal.js';
import { TokenVerifier } from './token-verifier.service.js';

/**
 * Issues signed tokens for development and tests. Registered only when AUTH_DEV_TOKENS is on
 * (the default under `npm start`'s embedded infrastructure, refused in production).
 */
@ApiTags('development')
@Controller('v1/dev/token')
export class DevTokenController {
  constructor(private readonly tokens: TokenVerifier) {}

  @Post()
  @HttpCode(200)
  @Public()
  @ApiOperation({ summary: 'Issue a development token for a test citizen, an admin or an agency' })
  @ApiOkResponse({ type: DevTokenResponseDto })
  async issue(@Body() request: DevTokenRequestDto): Promise<DevTokenResponseDto> {
    const { accessToken, expiresIn } = await this.tokens.signDevToken(this.principalFor(request));
    return { accessToken, tokenType: 'Bearer', expiresIn };
  }

  private principalFor(request: DevTokenRequestDto): Principal {
    switch (request.role) {
      case 'citizen': {
        const personalNumber = normalisePersonalNumber(request.personalNumber ?? '');
        if (!personalNumber) {
          throw new DomainError(
            'invalid',
            'validation-failed',
            'The request has 1 invalid field: personalNumber.',
            [
              {
                path: 'personalNumber',
                reason:
                  'personalNumber must be a valid Swedish personal identity number or coordination number',
                code: 'personalNumber',
              },
            ],
          );
        }
        // A pairwise-style subject that does not reveal the number, as e-ID brokers issue.
        const subject =
          request.subject ??
          `citizen-${createHash('sha256').update(personalNumber).digest('hex').slice(0, 20)}`;
        return { role: 'citizen', subject, personalNumber };
      }
      case 'agency': {
        // Validation requires `agency` for this role.
        const agency = request.agency ?? '';
        return { role: 'agency', subject: request.subject ?? `agency-${agency}`, agency };
      }
      case 'admin':
        return { role: 'admin', subject: request.subject ?? 'dev-admin' };
    }
  }
}
