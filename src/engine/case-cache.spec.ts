import { describe, expect, it } from '@jest/globals';
import { CaseCache, type Cacheable } from './case-cache.js';

const state = (id: string, status = 'running', runs = [`${id}-run`]): Cacheable => ({
  caseRecord: { id, status },
  runs: runs.map((r) => ({ id: r })),
  lookups: [{ id: `${id}-lookup` }],
});

describe('CaseCache', () => {
  it('finds a kept case by its id, its step runs and its look-ups', () => {
    const cache = new CaseCache<Cacheable>(10);
    cache.set(state('a'));
    expect(cache.get('a')?.caseRecord.id).toBe('a');
    expect(cache.caseOf('a-run')).toBe('a');
    expect(cache.caseOf('a-lookup')).toBe('a');
    expect(cache.caseOf('b-run')).toBeUndefined();
  });

  it('drops the least recently used case beyond its capacity, with its ids', () => {
    const cache = new CaseCache<Cacheable>(2);
    cache.set(state('a'));
    cache.set(state('b'));
    cache.get('a'); // a is now the most recently used
    cache.set(state('c'));
    expect(cache.get('b')).toBeUndefined();
    expect(cache.caseOf('b-run')).toBeUndefined();
    expect(cache.get('a')).toBeDefined();
    expect(cache.get('c')).toBeDefined();
  });

  it('keeps no finished case, and forgets one that finishes', () => {
    const cache = new CaseCache<Cacheable>(10);
    cache.set(state('a'));
    cache.set(state('a', 'completed'));
    expect(cache.get('a')).toBeUndefined();
    expect(cache.caseOf('a-run')).toBeUndefined();
    cache.set(state('b', 'cancelled'));
    expect(cache.get('b')).toBeUndefined();
  });

  it('keeps nothing with a capacity of 0', () => {
    const cache = new CaseCache<Cacheable>(0);
    cache.set(state('a'));
    expect(cache.get('a')).toBeUndefined();
    expect(cache.caseOf('a-run')).toBeUndefined();
  });

  it('replaces a case with its newer state, and its ids with the new ones', () => {
    const cache = new CaseCache<Cacheable>(10);
    cache.set(state('a', 'running', ['r1']));
    cache.set(state('a', 'running', ['r1', 'r2']));
    expect(cache.caseOf('r2')).toBe('a');
    cache.delete('a');
    expect(cache.caseOf('r1')).toBeUndefined();
    expect(cache.caseOf('r2')).toBeUndefined();
  });
});
