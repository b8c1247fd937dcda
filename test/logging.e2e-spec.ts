import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Body, Controller, Inject, Module, Post, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Logger, LoggerModule } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import request from 'supertest';
import { DataSource, QueryFailedError } from 'typeorm';
import { ProblemFilter } from '../src/common/problem.filter.js';
import { createRootLogger, loggerParams } from '../src/observability/logging.js';
import { createTestDatabase, type TestDatabase } from './support/test-env.js';

const NUMBER = '199012119948'; // a test personal identity number
// Neither form may appear: the 12-digit one, nor the 10-digit one inside it.
const SHORT = NUMBER.slice(2);

/** Where the logger writes: memory, read back by the tests. */
function memoryStream(): { stream: DestinationStream; text: () => string; clear: () => void } {
  const written: string[] = [];
  return {
    stream: { write: (line: string) => void written.push(line) },
    text: () => written.join(''),
    clear: () => void written.splice(0),
  };
}

const lines = (text: string): Record<string, unknown>[] =>
  text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as Record<string, unknown>);

describe('database errors in the logs', () => {
  let database: TestDatabase;
  let dataSource: DataSource;
  beforeAll(async () => {
    database = await createTestDatabase({ empty: true });
    dataSource = new DataSource({ type: 'postgres', url: database.url, poolSize: 2 });
    await dataSource.initialize();
    await dataSource.query('CREATE TABLE people (personal_number text PRIMARY KEY, name text)');
  });
  afterAll(async () => {
    await dataSource.destroy();
    await database.drop();
  });

  /** The error a real query raises, with the personal number as a bound parameter. */
  const failure = async (sql: string, parameters: unknown[]): Promise<QueryFailedError> => {
    const error = await dataSource.query(sql, parameters).then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!(error instanceof QueryFailedError)) throw new Error(`expected a QueryFailedError`);
    return error;
  };

  it('writes neither the bound values nor the values Postgres quotes back', async () => {
    const invalid = await failure('SELECT $1::uuid', [NUMBER]);
    // What the reviewer saw: the number in the message, the parameters and the driver error.
    expect(invalid.message).toContain(NUMBER);
    expect(invalid.parameters).toContain(NUMBER);
    await dataSource.query('INSERT INTO people VALUES ($1, $2)', [NUMBER, 'Anna']);
    const duplicate = await failure('INSERT INTO people VALUES ($1, $2)', [NUMBER, 'Anna']);
    expect(duplicate.driverError).toMatchObject({ detail: expect.stringContaining(NUMBER) });

    const { stream, text } = memoryStream();
    const log = createRootLogger('info', 'test', stream);
    for (const error of [invalid, duplicate]) {
      log.error({ err: error, requestId: 'r1' }, 'query failed');
      log.error(error);
      log.warn({ context: { error } }, 'nested');
    }
    log.info({ personalNumber: NUMBER, body: { personalNumber: NUMBER } }, 'a careless call');

    expect(text()).not.toContain(SHORT);
    for (const field of ['parameters', 'query', 'detail', 'where', 'driverError']) {
      expect(text()).not.toContain(`"${field}"`);
    }
    const errors = lines(text())
      .filter((line) => line.msg === 'query failed')
      .map((line) => line.err);
    expect(errors).toEqual([
      expect.objectContaining({ type: 'QueryFailedError', code: '22P02' }),
      expect.objectContaining({ type: 'QueryFailedError', code: '23505' }),
    ]);
  });

  describe('through the HTTP stack (ProblemFilter, nestjs-pino, pino-http)', () => {
    let app: INestApplication;
    const logs = memoryStream();

    @Controller('probe')
    class ProbeController {
      constructor(@Inject(DataSource) private readonly db: DataSource) {}

      /** Each route runs one statement with the request's value bound as a parameter. */
      @Post('uuid') uuid(@Body() body: { value: unknown }): Promise<unknown> {
        return this.db.query('SELECT $1::uuid', [body.value]);
      }
      @Post('int') int(@Body() body: { value: unknown }): Promise<unknown> {
        return this.db.query('SELECT $1::int', [body.value]);
      }
      @Post('text') text(@Body() body: { value: unknown }): Promise<unknown> {
        return this.db.query('SELECT $1::text', [body.value]);
      }
      @Post('date') date(@Body() body: { value: unknown }): Promise<unknown> {
        return this.db.query('SELECT $1::date', [body.value]);
      }
      @Post('people') person(@Body() body: { value: unknown }): Promise<unknown> {
        return this.db.query('INSERT INTO people VALUES ($1, $2)', [body.value, 'Anna']);
      }
    }

    beforeAll(async () => {
      // For the unique violation: the person is already there.
      await dataSource.query('INSERT INTO people VALUES ($1, $2) ON CONFLICT DO NOTHING', [
        NUMBER,
        'Anna',
      ]);
      @Module({
        imports: [
          LoggerModule.forRoot(loggerParams(createRootLogger('info', 'test', logs.stream))),
        ],
        controllers: [ProbeController],
        providers: [{ provide: DataSource, useValue: dataSource }],
      })
      class ProbeModule {}
      app = await NestFactory.create(ProbeModule, { bufferLogs: true });
      app.useLogger(app.get(Logger));
      app.useGlobalFilters(new ProblemFilter());
      await app.init();
    });
    afterAll(async () => {
      await app.close();
    });

    it.each([
      ['uuid', NUMBER, 400, 'invalid-input', '22P02'],
      ['int', Number(NUMBER), 400, 'invalid-input', '22003'],
      ['text', `${NUMBER}\u0000`, 400, 'invalid-input', '22021'],
      ['people', NUMBER, 409, 'conflict', '23505'],
    ])(
      'answers %s=%j, refused by the database, with %i %s and fixed text',
      async (route, value, status, code, sqlState) => {
        logs.clear();
        const response = await request(app.getHttpServer())
          .post(`/probe/${route}`)
          .send({ value })
          .expect(status);
        expect(response.headers['content-type']).toContain('application/problem+json');
        expect(response.body).toMatchObject({ status, code });
        expect(JSON.stringify(response.body)).not.toContain(SHORT);
        expect(logs.text()).not.toContain(SHORT);
        expect(lines(logs.text())).toEqual(
          expect.arrayContaining([
            expect.objectContaining({ msg: 'database refused client input', sqlState }),
          ]),
        );
      },
    );

    it('logs any other database error as a 500 with its SQLSTATE and nothing of the values', async () => {
      logs.clear();
      // 22008: `date/time field value out of range: "199012119948"`, a server-side fault here.
      const response = await request(app.getHttpServer())
        .post('/probe/date')
        .set('x-request-id', 'logging-e2e-1')
        .send({ value: NUMBER, personalNumber: NUMBER })
        .expect(500);
      expect(response.body).toMatchObject({ code: 'internal', requestId: 'logging-e2e-1' });
      expect(JSON.stringify(response.body)).not.toContain(SHORT);

      expect(logs.text()).not.toContain(SHORT);
      const logged = lines(logs.text()).find((line) => line.msg === 'unhandled error');
      expect(logged).toMatchObject({
        requestId: 'logging-e2e-1',
        err: { type: 'QueryFailedError', code: '22008', message: expect.any(String) },
      });
      expect(Object.keys(logged?.err as object).sort()).toEqual([
        'code',
        'message',
        'stack',
        'type',
      ]);
      // pino-http's own line for the failed request carries method, path and status only.
      expect(lines(logs.text())).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            req: { id: 'logging-e2e-1', method: 'POST', path: '/probe/date' },
            res: { statusCode: 500 },
          }),
        ]),
      );
    });
  });
});
