import { HttpException, HttpStatus, Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { bearerToken } from '../auth/bearer-token.js';
import { TokenVerifier } from '../auth/token-verifier.service.js';
import { DomainError } from '../common/domain-error.js';
import { MonitoredQueues } from '../observability/monitored-queues.js';
import { QueueService } from '../queue/queue.service.js';
import { DashboardSessionsRepository } from './dashboard-sessions.repository.js';
import { QUEUE_DASHBOARD_PATH, QueueBoard } from './queue-board.js';
import { SESSION_COOKIE, cookieValue } from './session-cookie.js';

const READ_METHODS = new Set(['GET', 'HEAD']);

/**
 * bull-board's page asks the browser to fetch its fonts from Google: an administrator's browser
 * would tell a third party that they are looking at leo's queues. Stylesheets and fonts are
 * kept to leo's own origin (the board falls back to system fonts), and the page may not be
 * framed. Scripts are left to the board: all of them are its own files from this origin.
 */
const CONTENT_SECURITY_POLICY = [
  "style-src 'self' 'unsafe-inline'",
  "font-src 'self' data:",
  "frame-ancestors 'none'",
  "base-uri 'self'",
].join('; ');

function pathOf(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/**
 * Serves the queue dashboard to administrators only. A request must carry an administrator's
 * bearer token (scripts, curl) or the session cookie that `POST /v1/admin/queue-dashboard/session`
 * sets (a browser cannot add a bearer header to a page it navigates to). Tokens in query strings
 * are never read: they end up in logs, histories and Referer headers. Only GET and HEAD pass, so
 * the board stays read-only whatever bull-board's own routes allow, and a forged cross-site
 * request (already stopped by SameSite=Strict) could change nothing anyway.
 */
@Injectable()
export class QueueDashboardMiddleware implements NestMiddleware {
  private board: QueueBoard | undefined;

  constructor(
    private readonly tokens: TokenVerifier,
    private readonly sessions: DashboardSessionsRepository,
    private readonly queues: QueueService,
    private readonly monitored: MonitoredQueues,
  ) {}

  async use(request: Request, response: Response, next: NextFunction): Promise<void> {
    const path = pathOf(request.originalUrl);
    if (path !== QUEUE_DASHBOARD_PATH && !path.startsWith(`${QUEUE_DASHBOARD_PATH}/`)) {
      next();
      return;
    }
    await this.authenticate(request);
    if (!READ_METHODS.has(request.method)) {
      response.setHeader('Allow', 'GET, HEAD');
      throw new HttpException(
        'The queue dashboard is read-only: retry a step or cancel a case through /v1/admin/cases, so the engine records it.',
        HttpStatus.METHOD_NOT_ALLOWED,
      );
    }
    response.setHeader('Cache-Control', 'no-store');
    response.setHeader('X-Frame-Options', 'DENY');
    response.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    const board = await this.currentBoard();
    // Call the board as Express would call an application mounted at its path.
    const { url, baseUrl } = request;
    request.url = request.originalUrl.slice(QUEUE_DASHBOARD_PATH.length) || '/';
    if (!request.url.startsWith('/')) request.url = `/${request.url}`;
    request.baseUrl = QUEUE_DASHBOARD_PATH;
    board.handler(request, response, (error?: unknown) => {
      request.url = url;
      request.baseUrl = baseUrl;
      next(error);
    });
  }

  private async authenticate(request: Request): Promise<void> {
    if (request.headers.authorization !== undefined) {
      const token = bearerToken(request.headers.authorization);
      if (!token) {
        throw new DomainError(
          'unauthenticated',
          'missing-token',
          'The Authorization header is not a bearer token.',
        );
      }
      const principal = await this.tokens.verify(token);
      if (principal.role !== 'admin') {
        throw new DomainError(
          'forbidden',
          'role-not-allowed',
          `The queue dashboard is for administrators; the caller is ${principal.role === 'agency' ? 'an' : 'a'} ${principal.role}.`,
        );
      }
      return;
    }
    const id = cookieValue(request.headers.cookie, SESSION_COOKIE);
    if (id === undefined) {
      throw new DomainError(
        'unauthenticated',
        'missing-token',
        "Sign in: the queue dashboard needs an administrator's bearer token, or a dashboard session from POST /v1/admin/queue-dashboard/session.",
      );
    }
    let session;
    try {
      session = await this.sessions.find(id);
    } catch (error) {
      throw new DomainError(
        'unavailable',
        'queue-dashboard-unavailable',
        'Dashboard sessions cannot be read (Redis does not answer); try again shortly.',
        [],
        { cause: error },
      );
    }
    if (!session) {
      throw new DomainError(
        'unauthenticated',
        'dashboard-session-expired',
        'The queue dashboard session has expired or was closed: open a new one with POST /v1/admin/queue-dashboard/session.',
      );
    }
  }

  private async currentBoard(): Promise<QueueBoard> {
    const queues = (await this.monitored.names()).map((name) => this.queues.queue(name).raw);
    if (this.board) this.board.update(queues);
    else this.board = new QueueBoard(queues);
    return this.board;
  }
}
