import { describe, expect, it } from '@jest/globals';
import { nominalDurationMs, parseIsoDuration } from './index.js';

describe('parseIsoDuration', () => {
  it('reads every component, with a decimal fraction on the smallest one', () => {
    expect(parseIsoDuration('P1Y2M3DT4H5M6.5S')).toEqual({
      years: 1,
      months: 2,
      weeks: 0,
      days: 3,
      hours: 4,
      minutes: 5,
      seconds: 6.5,
    });
    expect(parseIsoDuration('PT1,5H')?.hours).toBe(1.5);
    expect(parseIsoDuration('P2W')?.weeks).toBe(2);
  });

  it.each(['', 'P', 'PT', 'P1DT', 'P1.5DT1H', 'P1W1D', '-P1D', 'P-1D', 'P1D ', 'PT1H2D'])(
    'refuses %j',
    (text) => {
      expect(parseIsoDuration(text)).toBeUndefined();
    },
  );

  it('measures with months of 30 days and years of 365', () => {
    const day = 86_400_000;
    const ms = (text: string): number | undefined => {
      const duration = parseIsoDuration(text);
      return duration === undefined ? undefined : nominalDurationMs(duration);
    };
    expect(ms('P1Y1M2D')).toBe((365 + 30 + 2) * day);
    expect(ms('P3W')).toBe(21 * day);
    expect(ms('PT1M')).toBe(60_000);
  });
});
