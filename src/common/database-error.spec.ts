import { describe, expect, it } from '@jest/globals';
import { QueryFailedError } from 'typeorm';
import { errorTypeName, isDatabaseError, sqlStateOf } from './database-error.js';

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
