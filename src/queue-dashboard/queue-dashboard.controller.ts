import { Controller, Delete, HttpCode, Logger, Post, Req, Res } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { ApiCreatedResponse, ApiNoContentResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { CookieOptions, Request, Response } from 'express';
import { decodeJwt } from 'jose';
import { Roles } from '../auth/access.decorator.js';
import { bearerToken } from '../auth/bearer-token.js';
import { CurrentPrincipal } from '../auth/current-principal.decorator.js';
import type { Principal } from '../auth/principal.js';
import type { ResolvedConfig } from '../config/config.schema.js';
import { DashboardSessionsRepository } from './dashboard-sessions.repository.js';
import { QUEUE_DASHBOARD_PATH } from './queue-board.js';
import { DashboardSessionDto } from './queue-dashboard.dto.js';
import {
  SESSION_COOKIE,
  SESSION_SECONDS,
  cookieValue,
  sessionCookieOptions,
} from './session-cookie.js';

@ApiTags('admin: operations')
@Roles('admin')
@Controller('v1/admin/queue-dashboard')
export class QueueDashboardController {
  private readonly logger = new Logger(QueueDashboardController.name);
  private readonly cookieOptions: CookieOptions;

  constructor(
    private readonly sessions: DashboardSessionsRepository,
    config: ConfigService<ResolvedConfig, true>,
  ) {
    this.cookieOptions = sessionCookieOptions(
      config.get('nodeEnv', { infer: true }) === 'production',
    );
  }

  @Post('session')
  @HttpCode(201)
  @ApiOperation({
    summary: 'Open a session on the queue dashboard for this browser',
    description:
      `Sets the \`${SESSION_COOKIE}\` cookie (HttpOnly, SameSite=Strict, Secure in production, ` +
      `path ${QUEUE_DASHBOARD_PATH}) that lets this browser read the read-only queue dashboard ` +
      `at ${QUEUE_DASHBOARD_PATH} for 15 minutes (less if the bearer token expires sooner). ` +
      'The dashboard also accepts an administrator bearer token directly; never a token in the URL.',
  })
  @ApiCreatedResponse({ type: DashboardSessionDto })
  async open(
    @CurrentPrincipal() principal: Principal,
    @Req() request: Request,
    @Res({ passthrough: true }) response: Response,
  ): Promise<DashboardSessionDto> {
    // The guard verified this token; only its expiry is read here.
    const token = bearerToken(request.headers.authorization);
    const exp = token === undefined ? undefined : decodeJwt(token).exp;
    const tokenSeconds = exp === undefined ? SESSION_SECONDS : exp - Math.floor(Date.now() / 1000);
    const ttl = Math.max(1, Math.min(SESSION_SECONDS, tokenSeconds));
    const session = await this.sessions.open(principal.subject, ttl);
    response.cookie(SESSION_COOKIE, session.id, { ...this.cookieOptions, maxAge: ttl * 1000 });
    this.logger.log(
      { subject: principal.subject, expiresAt: session.expiresAt },
      'queue dashboard session opened',
    );
    return { path: QUEUE_DASHBOARD_PATH, expiresAt: session.expiresAt.toISOString() };
  }

  @Delete('session')
  @HttpCode(204)
  @ApiOperation({ summary: "Close this browser's queue dashboard session (sign out of the board)" })
  @ApiNoContentResponse({ description: 'Closed, or there was none.' })
  async close(
    @Req() request: Request,
    @Res({ passthrough: true }) response: Response,
  ): Promise<void> {
    const id = cookieValue(request.headers.cookie, SESSION_COOKIE);
    if (id !== undefined) await this.sessions.close(id);
    response.clearCookie(SESSION_COOKIE, this.cookieOptions);
  }
}
