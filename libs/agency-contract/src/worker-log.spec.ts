import { describe, expect, it } from '@jest/globals';
import { redisFault } from './worker-log.js';

const error = (message: string, code?: string): Error =>
  Object.assign(new Error(message), code ? { code } : {});

describe('redisFault', () => {
  it.each([
    ['NOPERM this user has no permissions to access one of the keys used as arguments', 'refused'],
    ["ERR The user executing the script can't access at least one of the keys", 'refused'],
    ['WRONGPASS invalid username-password pair or user is disabled.', 'credential'],
    ['NOAUTH Authentication required.', 'credential'],
    ['connect ECONNREFUSED 127.0.0.1:6390', 'unreachable'],
    ['Connection is closed.', 'unreachable'],
  ])('takes %j for %s', (message, fault) => {
    expect(redisFault(error(message))).toBe(fault);
  });

  it('knows a network failure by its code, and nothing else for a fault', () => {
    expect(redisFault(error('getaddrinfo failed', 'ENOTFOUND'))).toBe('unreachable');
    expect(redisFault(error('cannot handle 199012119948'))).toBeUndefined();
    expect(redisFault(error('Missing key for job 1. moveToFinished'))).toBeUndefined();
  });
});
