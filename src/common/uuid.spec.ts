import { describe, expect, it } from '@jest/globals';
import { uuidv7 } from './uuid.js';

describe('uuidv7', () => {
  it('is a version 7 UUID of the RFC variant, with the time in its first 48 bits', () => {
    const at = Date.UTC(2026, 11, 2, 12, 0, 0, 123);
    const id = uuidv7(at);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(at);
  });

  it('sorts by the time it was made, and never repeats', () => {
    const ids = Array.from({ length: 5_000 }, (_, i) => uuidv7(1_700_000_000_000 + i));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    const sameMs = Array.from({ length: 5_000 }, () => uuidv7(1_700_000_000_000));
    expect(new Set(sameMs).size).toBe(sameMs.length);
  });
});
