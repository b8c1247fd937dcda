import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from '../config/config.schema.js';

const problemsOf = (env: Record<string, string>): string[] => {
  try {
    loadConfig({ AUTH_DEV_TOKENS: 'true', ...env });
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  return [];
};

describe('the mock agencies settings', () => {
  it('default to no latency, no failures, decisions after 2 s and one refusal in ten', () => {
    expect(loadConfig({}).mockAgencies).toEqual({
      latencyMs: 0,
      failureRate: 0,
      decisionDelayMs: 2_000,
      rejectionRate: 0.1,
    });
  });

  it('read whole milliseconds and rates between 0 and 1', () => {
    expect(
      loadConfig({
        MOCK_AGENCY_LATENCY_MS: '250',
        MOCK_AGENCY_FAILURE_RATE: '0.05',
        MOCK_DECISION_DELAY_MS: '0',
        MOCK_REJECTION_RATE: '1',
      }).mockAgencies,
    ).toEqual({ latencyMs: 250, failureRate: 0.05, decisionDelayMs: 0, rejectionRate: 1 });
    expect(loadConfig({ MOCK_REJECTION_RATE: '.5' }).mockAgencies.rejectionRate).toBe(0.5);
  });

  it.each([
    ['MOCK_AGENCY_LATENCY_MS', '-1'],
    ['MOCK_AGENCY_LATENCY_MS', '1.5'],
    ['MOCK_AGENCY_LATENCY_MS', '600001'],
    ['MOCK_AGENCY_FAILURE_RATE', '1.1'],
    ['MOCK_AGENCY_FAILURE_RATE', '-0.1'],
    ['MOCK_AGENCY_FAILURE_RATE', 'half'],
    ['MOCK_DECISION_DELAY_MS', 'soon'],
    ['MOCK_DECISION_DELAY_MS', String(31 * 24 * 3_600_000)],
    ['MOCK_REJECTION_RATE', '10%'],
    ['MOCK_REJECTION_RATE', 'NaN'],
  ])('refuse %s=%s, naming the variable', (name, value) => {
    const problems = problemsOf({ [name]: value });
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.every((p) => p.startsWith(`${name}: `))).toBe(true);
  });

  it('flag a misspelt MOCK_ variable', () => {
    expect(problemsOf({ MOCK_FAILURE_RATE: '1' })).toEqual([
      expect.stringMatching(/^MOCK_FAILURE_RATE: unknown variable/),
    ]);
  });
});
