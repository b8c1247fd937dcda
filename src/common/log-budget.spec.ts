import { describe, expect, it } from '@jest/globals';
import { LogBudget } from './log-budget.js';

describe('LogBudget', () => {
  it('lets a few lines a window through per key, and counts the rest for the next one', () => {
    let now = 0;
    const budget = new LogBudget(2, 1_000, () => now);
    expect(budget.take('skatteverket')).toEqual({ log: true, held: 0 });
    expect(budget.take('skatteverket')).toEqual({ log: true, held: 0 });
    expect(budget.take('skatteverket')).toEqual({ log: false, held: 0 });
    expect(budget.take('skatteverket')).toEqual({ log: false, held: 0 });
    // Another key has a budget of its own.
    expect(budget.take('bolagsverket')).toEqual({ log: true, held: 0 });
    now = 1_000;
    expect(budget.take('skatteverket')).toEqual({ log: true, held: 2 });
    expect(budget.take('skatteverket')).toEqual({ log: true, held: 0 });
  });
});
