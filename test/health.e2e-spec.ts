import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { freePort } from '../src/infra/processes.js';
import { startTestApp, type TestApp } from './support/test-env.js';

describe('health', () => {
  let leo: TestApp;
  beforeAll(async () => {
    leo = await startTestApp();
  });
  afterAll(async () => {
    await leo.close();
  });

  it('is live without checking dependencies', async () => {
    const response = await request(leo.app.getHttpServer()).get('/health/live').expect(200);
    expect(response.body).toMatchObject({ status: 'ok' });
  });

  it('is ready when Postgres and Redis answer', async () => {
    const response = await request(leo.app.getHttpServer()).get('/health/ready').expect(200);
    expect(response.body.info).toMatchObject({
      postgres: { status: 'up' },
      redis: { status: 'up' },
    });
  });

  it('carries a request id, echoing a well-formed one from the caller', async () => {
    const given = await request(leo.app.getHttpServer())
      .get('/health/live')
      .set('x-request-id', 'abc12345-trace')
      .expect(200);
    expect(given.headers['x-request-id']).toBe('abc12345-trace');
    const minted = await request(leo.app.getHttpServer())
      .get('/health/live')
      .set('x-request-id', 'bad id!');
    expect(minted.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('serves the OpenAPI document and its UI', async () => {
    const json = await request(leo.app.getHttpServer()).get('/docs-json').expect(200);
    expect(json.body.openapi).toMatch(/^3\./);
    expect(Object.keys(json.body.paths)).toEqual(
      expect.arrayContaining(['/health/live', '/health/ready', '/v1/me', '/v1/dev/token']),
    );
    // A request that changes a case documents the 503 of no engine taking it (decision 0020).
    const paths = json.body.paths as Record<string, Record<string, { responses: object }>>;
    expect(Object.keys(paths['/v1/cases/{id}/submit']?.post?.responses ?? {})).toContain('503');
    expect(Object.keys(paths['/v1/cases/{id}']?.get?.responses ?? {})).not.toContain('503');
    const ui = await request(leo.app.getHttpServer()).get('/docs').expect(200);
    expect(ui.text).toContain('swagger');
  });

  it('answers unknown routes with a problem document, not HTML', async () => {
    const response = await request(leo.app.getHttpServer()).get('/nope').expect(404);
    expect(response.headers['content-type']).toContain('application/problem+json');
    expect(response.body).toMatchObject({ status: 404, code: 'not-found' });
    expect(response.body.requestId).toEqual(expect.any(String));
  });
});

describe('health when Redis is unreachable', () => {
  let leo: TestApp;
  beforeAll(async () => {
    const closedPort = await freePort();
    leo = await startTestApp({ REDIS_URL: `redis://127.0.0.1:${closedPort}` });
  });
  afterAll(async () => {
    await leo.close();
  });

  it('is live but not ready, and says which dependency is down', async () => {
    await request(leo.app.getHttpServer()).get('/health/live').expect(200);
    const response = await request(leo.app.getHttpServer()).get('/health/ready').expect(503);
    expect(response.body.details).toMatchObject({
      postgres: { status: 'up' },
      redis: { status: 'down' },
    });
  });
});
