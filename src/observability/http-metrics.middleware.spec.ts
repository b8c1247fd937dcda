import { describe, expect, it } from '@jest/globals';
import type { Request } from 'express';
import { routeLabel } from './http-metrics.middleware.js';

const requestFor = (originalUrl: string, route?: { path: unknown }): Request =>
  ({ originalUrl, route }) as unknown as Request;

describe('routeLabel', () => {
  it("is the template of the route that served the request, never the request's path", () => {
    const request = requestFor('/v1/admin/cases/3f0c9a4e-0d1b-4c8e-9a57-5b2d1e0c7f11?x=1', {
      path: '/v1/admin/cases/:id',
    });
    expect(routeLabel(request)).toBe('/v1/admin/cases/:id');
  });

  it('is one label for requests no route of leo handled', () => {
    expect(routeLabel(requestFor('/199012119948'))).toBe('unmatched');
    expect(routeLabel(requestFor('/x/199012119948', { path: '{/*splat}' }))).toBe('unmatched');
    expect(routeLabel(requestFor('/x', { path: 42 }))).toBe('unmatched');
  });

  it('is one label for each part served outside Nest: the queue dashboard and the API docs', () => {
    expect(
      routeLabel(
        requestFor('/admin/queues/api/queues/agency.kommun/123', {
          path: '/api/queues/:queueName/:jobId',
        }),
      ),
    ).toBe('/admin/queues');
    expect(routeLabel(requestFor('/admin/queues'))).toBe('/admin/queues');
    expect(routeLabel(requestFor('/docs/swagger-ui.css'))).toBe('/docs');
    expect(routeLabel(requestFor('/admin/queuesX'))).toBe('unmatched');
  });
});
