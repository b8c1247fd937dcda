import { describe, expect, it } from '@jest/globals';
import { componentOf, summarise } from '../bench/profile-summary.js';

const frame = (url: string, functionName = 'f', lineNumber = 0) => ({
  url,
  functionName,
  lineNumber,
});

describe('bench profile summary', () => {
  it('names the component a function belongs to from its script', () => {
    expect(componentOf(frame('file:///w/node_modules/pg/lib/result.js'))).toBe('pg');
    expect(componentOf(frame('file:///w/node_modules/@nestjs/core/router/x.js'))).toBe(
      '@nestjs/core',
    );
    expect(componentOf(frame('file:///w/node_modules/a/node_modules/b/i.js'))).toBe('b');
    expect(componentOf(frame('node:internal/streams/writable'))).toBe('node:streams');
    expect(componentOf(frame('node:events'))).toBe('node:events');
    expect(componentOf(frame('file:///w/dist/src/engine/engine.service.js'))).toBe(
      'leo src/engine',
    );
    expect(componentOf(frame('file:///w/dist/libs/workflow/src/plan.js'))).toBe(
      'leo libs/workflow',
    );
    expect(componentOf(frame('', '(garbage collector)'))).toBe('(garbage collector)');
    expect(componentOf(frame('', 'writev'))).toBe('(native code)');
  });

  it('sums self time per component and function, leaving idle out', () => {
    const profile = {
      nodes: [
        { id: 1, callFrame: frame('', '(root)') },
        { id: 2, callFrame: frame('', '(idle)') },
        { id: 3, callFrame: frame('file:///w/node_modules/pg/lib/result.js', 'parseRow', 62) },
        { id: 4, callFrame: frame('', 'writev') },
      ],
      samples: [2, 3, 4, 3, 2],
      timeDeltas: [5_000, 1_000, 2_000, 3_000, 7_000],
    };
    const summary = summarise([profile, profile]);
    expect(summary.totalMs).toBe(12);
    expect(summary.components).toEqual([
      { name: 'pg', ms: 8 },
      { name: '(native code)', ms: 4 },
    ]);
    expect(summary.functions[0]).toEqual({
      name: 'parseRow',
      where: 'pg/lib/result.js:63',
      component: 'pg',
      ms: 8,
    });
  });
});
