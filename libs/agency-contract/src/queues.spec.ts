import { describe, expect, it } from '@jest/globals';
import { partitionStreamKey, replyStream, resultsStreamKey } from './queues.js';

describe('replyStream', () => {
  const stream = resultsStreamKey('{leo}');

  it("answers on the job's partition stream", () => {
    const replyTo = partitionStreamKey('{leo}', 7);
    expect(replyTo).toBe('{leo}:stream:engine.results:p7');
    expect(replyStream(stream, { stepRunId: 's', replyTo })).toBe(replyTo);
  });

  it('answers on the results stream for a job without replyTo (an engine before partitions)', () => {
    expect(replyStream(stream, { stepRunId: 's' })).toBe(stream);
    expect(replyStream(stream, undefined)).toBe(stream);
  });

  it('never writes to a key a queue message names that is not a partition stream', () => {
    for (const replyTo of [
      '{leo}:bull:agency.bolagsverket:wait',
      '{other}:stream:engine.results:p1',
      `${stream}:p`,
      `${stream}:p1:x`,
      `${stream}:p12345`,
      `${stream}:p07`,
      `${stream}:p32`,
      `${stream}:p99`,
      `${stream}:p-1`,
      42,
      { key: stream },
    ]) {
      expect(replyStream(stream, { replyTo })).toBe(stream);
    }
  });
});
