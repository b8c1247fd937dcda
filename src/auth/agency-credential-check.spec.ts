import { describe, expect, it } from '@jest/globals';
import { basicCredentials } from './agency-credential-check.js';

const header = (text: string): string => `Basic ${Buffer.from(text).toString('base64')}`;

describe('basicCredentials', () => {
  it('reads the user name and password of an HTTP Basic header', () => {
    expect(
      basicCredentials(header('leo-agency.ab12cd34.skatteverket.0123456789ab:s3cr:et')),
    ).toEqual({ username: 'leo-agency.ab12cd34.skatteverket.0123456789ab', password: 's3cr:et' });
    expect(basicCredentials(`basic ${Buffer.from('u:p').toString('base64')}`)).toEqual({
      username: 'u',
      password: 'p',
    });
  });

  it('is undefined for anything else', () => {
    for (const value of [
      undefined,
      42,
      'Bearer abc',
      'Basic',
      'Basic !!!',
      header('no-colon'),
      header(':no-user'),
      `Basic ${'A'.repeat(600)}`,
    ]) {
      expect(basicCredentials(value)).toBeUndefined();
    }
  });
});
