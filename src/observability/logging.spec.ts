import { describe, expect, it } from '@jest/globals';
import type { DestinationStream } from 'pino';
import { QueryFailedError } from 'typeorm';
import {
  createRootLogger,
  REDACT_DEPTH,
  REDACTED_KEYS,
  scrubMessage,
  serializeError,
} from './logging.js';

const NUMBER = '199012119948'; // a test personal identity number
const SHORT = NUMBER.slice(2);

/** A root logger writing to memory, as leo builds it. */
function capture(): {
  log: ReturnType<typeof createRootLogger>;
  text: () => string;
  lines: () => Record<string, unknown>[];
} {
  const written: string[] = [];
  const stream: DestinationStream = { write: (line: string) => void written.push(line) };
  return {
    log: createRootLogger('trace', 'test', stream),
    text: () => written.join(''),
    lines: () => written.map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

/** What pg's DatabaseError carries for `SELECT $1::uuid` with a personal number. */
function pgError(): Error {
  const error = new Error(`invalid input syntax for type uuid: "${NUMBER}"`);
  Object.assign(error, {
    name: 'error',
    severity: 'ERROR',
    code: '22P02',
    detail: `Key (personal_number)=(${NUMBER}) already exists.`,
    where: `unnamed portal parameter $1 = '${NUMBER}'`,
    routine: 'string_to_uuid',
    internalQuery: `SELECT '${NUMBER}'`,
  });
  return error;
}

const queryFailed = (): QueryFailedError =>
  new QueryFailedError(
    'SELECT * FROM people WHERE personal_number = $1',
    [NUMBER, { name: 'Anna Andersson', personalNumber: NUMBER }],
    pgError(),
  );

describe('serializeError', () => {
  it('writes only type, message, code and stack of a QueryFailedError, with values scrubbed', () => {
    const logged = serializeError(queryFailed());
    expect(Object.keys(logged).sort()).toEqual(['code', 'message', 'stack', 'type']);
    expect(logged).toMatchObject({
      type: 'QueryFailedError',
      code: '22P02',
      message: 'invalid input syntax for type uuid: "…"',
    });
    expect(logged.stack?.split('\n')[0]).toBe(
      'QueryFailedError: invalid input syntax for type uuid: "…"',
    );
    expect(JSON.stringify(logged)).not.toContain(SHORT);
  });

  it('reads pino-std-serializers copies (what pino-http hands it) through their raw error', () => {
    const copy = Object.create({ raw: queryFailed() }) as Record<string, unknown>;
    Object.assign(copy, { type: 'QueryFailedError', parameters: [NUMBER], query: 'SELECT' });
    expect(JSON.stringify(serializeError(copy))).not.toContain(SHORT);
    expect(serializeError(copy).code).toBe('22P02');
  });

  it('keeps a cause, through the same allow-list', () => {
    const error = new Error('saving the case failed', { cause: queryFailed() });
    const logged = serializeError(error);
    expect(logged.message).toBe('saving the case failed');
    expect(logged.cause).toMatchObject({ type: 'QueryFailedError', code: '22P02' });
    expect(JSON.stringify(logged)).not.toContain(SHORT);
  });

  it('scrubs JSON.parse errors, which quote the text they failed on', () => {
    let parseError: unknown;
    try {
      JSON.parse(`{"personalNumber": ${NUMBER}x}`);
    } catch (error) {
      parseError = error;
    }
    expect(JSON.stringify(serializeError(parseError))).not.toContain(SHORT);
  });
});

describe('scrubMessage', () => {
  it.each([
    [`invalid input syntax for type uuid: "${NUMBER}"`, 'invalid input syntax for type uuid: "…"'],
    [
      `value "${NUMBER}" is out of range for type integer`,
      'value "…" is out of range for type integer',
    ],
    [
      'invalid byte sequence for encoding "UTF8": 0x00',
      'invalid byte sequence for encoding "…": 0x…',
    ],
    [`date/time field value out of range: "${NUMBER}`, 'date/time field value out of range: "…"'],
    [`bad value '${NUMBER}' here`, "bad value '…' here"],
    [`no quotes ${NUMBER} at all`, 'no quotes … at all'],
    [`first line\nDETAIL: ${NUMBER}`, 'first line'],
  ])('%j → %j', (message, scrubbed) => {
    expect(scrubMessage(message)).toBe(scrubbed);
  });
});

describe('the root logger', () => {
  it('never writes a QueryFailedError’s query, parameters, detail or where', () => {
    const { log, text, lines } = capture();
    const error = queryFailed();
    log.error({ err: error }, 'query failed');
    log.error(error); // no message: pino would use the error's own
    log.error({ err: error }); // likewise
    log.warn({ failure: error, context: { error } }, 'under another key');
    expect(text()).not.toContain(SHORT);
    for (const field of [
      'parameters',
      'query',
      'detail',
      'where',
      'driverError',
      'internalQuery',
    ]) {
      expect(text()).not.toContain(`"${field}"`);
    }
    expect(lines().map((l) => l.msg)).toEqual([
      'query failed',
      'invalid input syntax for type uuid: "…"',
      'invalid input syntax for type uuid: "…"',
      'under another key',
    ]);
    expect(lines()[0]?.err).toMatchObject({ type: 'QueryFailedError', code: '22P02' });
  });

  /** `{ [key]: value }` wrapped so that the key sits `depth` levels below the top. */
  const nestedAt = (depth: number, key: string, value: unknown, viaArray = false): object => {
    let object: object = { [key]: value };
    for (let level = depth; level > 0; level -= 1) {
      // An array element is a level of its own: `list.0.key`.
      if (viaArray && level === 2) {
        object = { list: [object] };
        level -= 1;
      } else object = { inner: object };
    }
    return object;
  };

  it.each(REDACTED_KEYS)('removes %s at the top level and at every depth it reaches', (key) => {
    const { log, text } = capture();
    log.info({ [key]: NUMBER }, 'top level');
    for (let depth = 1; depth <= REDACT_DEPTH; depth += 1) {
      log.info(nestedAt(depth, key, NUMBER), `depth ${depth}`);
      if (depth >= 2) log.info(nestedAt(depth, key, NUMBER, true), `depth ${depth} in an array`);
    }
    log.child({ [key]: NUMBER }).info('child bindings');
    expect(text()).not.toContain(SHORT);
    expect(text()).toContain(`depth ${REDACT_DEPTH} in an array`);
    expect(text()).toContain('child bindings');
  });

  it('does not reach deeper than REDACT_DEPTH (the documented limit)', () => {
    const { log, lines } = capture();
    log.info(nestedAt(REDACT_DEPTH + 1, 'personalNumber', 'deep'));
    expect(JSON.stringify(lines()[0])).toContain('deep');
  });

  it('removes request and response headers', () => {
    const { log, text } = capture();
    log.info({
      req: { headers: { authorization: 'Bearer x', cookie: 's=1' } },
      res: { headers: {} },
    });
    expect(text()).not.toContain('Bearer');
    expect(text()).not.toContain('cookie');
  });
});
