import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type ArgumentsHost, Logger } from '@nestjs/common';
import { QueryFailedError } from 'typeorm';
import { DomainError } from './domain-error.js';
import { ProblemFilter, type Problem } from './problem.filter.js';

const NUMBER = '199012119948';

/** Runs the filter on an error as if a request had failed with it; returns what was sent. */
function answer(exception: unknown): {
  status: number;
  body: Problem;
  headers: Record<string, string>;
} {
  const sent = {
    status: 0,
    body: undefined as unknown as Problem,
    headers: {} as Record<string, string>,
  };
  const response = {
    headersSent: false,
    setHeader: (name: string, value: string) => void (sent.headers[name.toLowerCase()] = value),
    status(code: number) {
      sent.status = code;
      return this;
    },
    type() {
      return this;
    },
    json(body: Problem) {
      sent.body = body;
      return this;
    },
  };
  const host = {
    switchToHttp: () => ({ getResponse: () => response, getRequest: () => ({ id: 'req-1' }) }),
  } as unknown as ArgumentsHost;
  new ProblemFilter().catch(exception, host);
  return sent;
}

/** A QueryFailedError as TypeORM builds it from a pg error with this SQLSTATE. */
const databaseError = (code: string): QueryFailedError => {
  const driverError = Object.assign(new Error(`value "${NUMBER}" refused`), {
    code,
    severity: 'ERROR',
    detail: `Key (personal_number)=(${NUMBER})`,
  });
  return new QueryFailedError('SELECT $1', [NUMBER], driverError);
};

describe('ProblemFilter', () => {
  // What it logs is the business of src/observability (and test/logging.e2e-spec.ts).
  beforeAll(() => {
    Logger.overrideLogger(false);
  });
  afterAll(() => {
    Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose', 'fatal']);
  });

  it.each([
    ['22P05', 400, 'invalid-input'],
    ['22021', 400, 'invalid-input'],
    ['22003', 400, 'invalid-input'],
    ['22P02', 400, 'invalid-input'],
    ['54001', 400, 'invalid-input'],
    ['23001', 409, 'conflict'],
    ['23505', 409, 'conflict'],
  ])(
    'answers SQLSTATE %s, which only client input causes, with %i %s',
    (sqlState, status, code) => {
      const sent = answer(databaseError(sqlState));
      expect(sent.status).toBe(status);
      expect(sent.body).toMatchObject({
        status,
        code,
        type: `urn:leo:problem:${code}`,
        requestId: 'req-1',
      });
      expect(JSON.stringify(sent.body)).not.toContain(NUMBER);
      expect(Object.keys(sent.body)).not.toContain('sqlState');
    },
  );

  it.each(['23502', '42P01', '40001', '57014'])(
    'answers any other SQLSTATE (%s) with a 500 that reveals nothing',
    (sqlState) => {
      const sent = answer(databaseError(sqlState));
      expect(sent.status).toBe(500);
      expect(sent.body).toMatchObject({ code: 'internal', requestId: 'req-1' });
      expect(JSON.stringify(sent.body)).not.toContain(NUMBER);
      expect(JSON.stringify(sent.body)).not.toContain(sqlState);
    },
  );

  it('answers an unavailable dependency with 503 and its code, without WWW-Authenticate', () => {
    const sent = answer(
      new DomainError('unavailable', 'identity-provider-unavailable', 'Try again shortly.'),
    );
    expect(sent.status).toBe(503);
    expect(sent.body).toMatchObject({
      code: 'identity-provider-unavailable',
      title: 'Service Unavailable',
    });
    expect(sent.headers['www-authenticate']).toBeUndefined();
  });
});
