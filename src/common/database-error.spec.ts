import { describe, expect, it } from '@jest/globals';
import { QueryFailedError } from 'typeorm';
import {
  errorTypeName,
  isDatabaseError,
  isDatabaseUnavailable,
  sqlStateOf,
} from './database-error.js';

/** What pg's DatabaseError carries for `SELECT $1::uuid` (name `error`, like pg's own). */
function pgError(): Error {
  const error = new Error('invalid input syntax for type uuid: "x"');
  Object.assign(error, {
    name: 'error',
    severity: 'ERROR',
    code: '22P02',
    routine: 'string_to_uuid',
  });
  return error;
}

const queryFailed = (): QueryFailedError =>
  new QueryFailedError('SELECT $1::uuid', ['x'], pgError());

describe('database errors', () => {
  it('are told by SQLSTATE, and nothing else', () => {
    expect(sqlStateOf(queryFailed())).toBe('22P02');
    expect(sqlStateOf(pgError())).toBe('22P02');
    expect(sqlStateOf(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBeUndefined();
    // A five-character code alone does not make a database error.
    expect(sqlStateOf(Object.assign(new Error('x'), { code: 'ABCDE' }))).toBeUndefined();
    expect(isDatabaseError(queryFailed())).toBe(true);
    expect(isDatabaseError(new Error('x'))).toBe(false);
  });

  it('have their type named by class, else by name, never by anything unsafe', () => {
    expect(errorTypeName(queryFailed())).toBe('QueryFailedError');
    expect(errorTypeName({ name: 'DatabaseError' })).toBe('DatabaseError');
    expect(errorTypeName({ name: 'not an identifier' })).toBe('Error');
  });
});

describe('isDatabaseUnavailable', () => {
  const pgError = (code: string) =>
    Object.assign(new Error('x'), { code, severity: 'FATAL', routine: 'r' });

  it('tells a database that cannot serve now from a statement that failed', () => {
    for (const code of ['08006', '08001', '53300', '55000', '57P01', '57P03']) {
      expect({ code, unavailable: isDatabaseUnavailable(pgError(code)) }).toEqual({
        code,
        unavailable: true,
      });
    }
    for (const code of ['23505', '22P02', '42P01', '40001']) {
      expect({ code, unavailable: isDatabaseUnavailable(pgError(code)) }).toEqual({
        code,
        unavailable: false,
      });
    }
  });

  it('counts a connection that failed or broke, however the driver says it', () => {
    expect(
      isDatabaseUnavailable(Object.assign(new Error('connect'), { code: 'ECONNREFUSED' })),
    ).toBe(true);
    expect(isDatabaseUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isDatabaseUnavailable(new Error('timeout exceeded when trying to connect'))).toBe(true);
    expect(
      isDatabaseUnavailable(
        new QueryFailedError('SELECT 1', [], pgError('57P01') as unknown as Error),
      ),
    ).toBe(true);
    expect(isDatabaseUnavailable(new Error('something else'))).toBe(false);
    expect(isDatabaseUnavailable('ECONNREFUSED')).toBe(false);
  });
});
