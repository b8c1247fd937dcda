import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { Metrics } from './metrics.js';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** Probes and scrapes would outnumber real requests: they are not measured. */
const UNMEASURED = /^\/(?:metrics|health)(?:[/?]|$)/;

const under = (path: string, prefix: string): boolean =>
  path === prefix || path.startsWith(`${prefix}/`);

/** The path of the request as it arrived (middleware see `req.url` relative to their mount). */
function pathOf(request: Request): string {
  const url = request.originalUrl;
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/**
 * The route template that served a request (`/v1/admin/cases/:id`), never its raw path: a path
 * carries ids, and could carry anything a client puts in it. Requests no route of leo's handled
 * (404s, bodies the parser refused) share one label, `unmatched`.
 */
export function routeLabel(request: Request): string {
  const path = pathOf(request);
  // The queue dashboard routes inside its own router: one label for all of it.
  if (under(path, '/admin/queues')) return '/admin/queues';
  const route: unknown = request.route;
  if (typeof route === 'object' && route !== null && 'path' in route) {
    const template = route.path;
    // A catch-all (Nest's not-found route, `{/*splat}`) is no route of leo's.
    if (typeof template === 'string' && !template.includes('*')) return template;
  }
  // Swagger UI's assets are static files, served by no route.
  if (under(path, '/docs')) return '/docs';
  return 'unmatched';
}

/** Times every request but probes and scrapes, labelled when its response has been sent. */
@Injectable()
export class HttpMetricsMiddleware implements NestMiddleware {
  constructor(private readonly metrics: Metrics) {}

  use(request: Request, response: Response, next: NextFunction): void {
    if (UNMEASURED.test(request.originalUrl)) {
      next();
      return;
    }
    const end = this.metrics.httpRequestDuration.startTimer();
    response.once('finish', () => {
      end({
        method: METHODS.has(request.method) ? request.method : 'OTHER',
        route: routeLabel(request),
        status_class: `${Math.floor(response.statusCode / 100)}xx`,
      });
    });
    next();
  }
}
