import { describe, expect, it } from '@jest/globals';
import { agencyOfResultsStream, agencyQueueName, agencyResultsStreamKey } from './queues.js';

describe("an agency's results stream", () => {
  it('has a key of its own under the queue prefix, in the queues’ hash slot', () => {
    expect(agencyResultsStreamKey('{leo}', 'skatteverket')).toBe(
      '{leo}:stream:agency.skatteverket.results',
    );
    expect(agencyResultsStreamKey('{test}', 'kommun-0180')).toBe(
      '{test}:stream:agency.kommun-0180.results',
    );
  });

  it('is outside its queue’s keys, so the credential that works the queue cannot read it', () => {
    const queueKeys = `{leo}:${agencyQueueName('skatteverket')}:`;
    expect(agencyResultsStreamKey('{leo}', 'skatteverket').startsWith(queueKeys)).toBe(false);
  });

  it('names its agency, and nothing else does', () => {
    expect(agencyOfResultsStream('{leo}', '{leo}:stream:agency.skatteverket.results')).toBe(
      'skatteverket',
    );
    for (const key of [
      '{leo}:stream:engine.results',
      '{leo}:stream:engine.results:p7',
      '{other}:stream:agency.skatteverket.results',
      '{leo}:stream:agency..results',
      '{leo}:stream:agency.Skatteverket.results',
      '{leo}:agency.skatteverket:wait',
    ]) {
      expect(agencyOfResultsStream('{leo}', key)).toBeUndefined();
    }
  });

  it('refuses an agency code that is not one', () => {
    expect(() => agencyResultsStreamKey('{leo}', 'a*')).toThrow(/invalid agency code/);
  });
});
