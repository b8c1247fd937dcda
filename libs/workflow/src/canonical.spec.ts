import { describe, expect, it } from '@jest/globals';
import { WORKLOAD } from '../test/fixtures.js';
import { canonicalJson, definitionChecksum, type LifeEventDefinition } from './index.js';

describe('canonicalJson', () => {
  it('sorts keys at every depth and has no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: 'x y' } })).toBe(
      '{"a":{"c":"x y","d":[3,{"y":2,"z":1}]},"b":1}',
    );
  });

  it('follows JSON.stringify for undefined and non-finite values', () => {
    expect(canonicalJson({ a: undefined, b: [undefined, Number.NaN] })).toBe('{"b":[null,null]}');
    expect(canonicalJson(undefined)).toBe('null');
    expect(() => canonicalJson({ n: 1n })).toThrow(TypeError);
  });
});

describe('definitionChecksum', () => {
  it('is sha256 of the canonical JSON, independent of key order', () => {
    const reordered = Object.fromEntries(
      Object.entries(WORKLOAD).reverse(),
    ) as unknown as LifeEventDefinition;
    expect(definitionChecksum(WORKLOAD)).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(definitionChecksum(reordered)).toBe(definitionChecksum(WORKLOAD));
    expect(definitionChecksum({ ...WORKLOAD, version: 2 })).not.toBe(definitionChecksum(WORKLOAD));
  });
});
