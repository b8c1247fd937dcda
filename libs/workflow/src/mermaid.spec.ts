import { describe, expect, it } from '@jest/globals';
import { CATALOGUE, WORKLOAD, stepAt, workloadCopy } from '../test/fixtures.js';
import { dependencies, describeRule, toMermaid } from './index.js';

describe('toMermaid', () => {
  const chart = toMermaid(WORKLOAD, CATALOGUE);
  const lines = chart.split('\n');

  it('is a top-down flowchart with a start node listing the inputs', () => {
    expect(lines[0]).toBe('flowchart TD');
    expect(chart).toContain(
      'start(["Inputs<br/>person.personalNumber<br/>person.name<br/>person.address<br/>',
    );
  });

  it('has one lane per agency, in order of first use, holding its steps', () => {
    const lanes = lines.filter((l) => l.trimStart().startsWith('subgraph '));
    expect(lanes).toEqual([
      '  subgraph agency_bolagsverket["Companies Registration Office"]',
      '  subgraph agency_skatteverket["Swedish Tax Agency"]',
      '  subgraph agency_kommun["Municipality"]',
    ]);
    const kommun = chart.slice(chart.indexOf('subgraph agency_kommun'));
    expect(kommun).toContain('step_food_premises["Register food premises<br/>Municipality"]');
    expect(chart).toContain(
      'step_register_business["Register the business<br/>Companies Registration Office"]',
    );
  });

  it('draws an edge per dependency, dashed and labelled into conditional steps', () => {
    const edges = lines.filter((l) => /-->|-\.->/.test(l));
    const expected = [...dependencies(WORKLOAD)].reduce(
      (n, [, deps]) => n + Math.max(deps.length, 1),
      0,
    );
    expect(edges).toHaveLength(expected);
    expect(edges).toContain('  step_register_business --> step_f_tax');
    expect(edges).toContain(
      '  step_register_business -.->|"business.expectedTurnover #gt; 120000"| step_vat',
    );
    expect(edges).toContain('  start -.->|"business.servesFood"| step_food_premises');
    expect(edges).toContain('  step_vat --> step_business_notice');
    expect(edges).toContain('  start --> step_register_business');
  });

  it('escapes quotes, brackets, pipes and hashes in labels', () => {
    const definition = workloadCopy();
    stepAt(definition, 0).title = { sv: 'x', en: 'Say "hi" [now] | #1 <b>' };
    stepAt(definition, 2).when = { '==': [{ var: 'business.name' }, 'A "quoted" | name'] };
    const text = toMermaid(definition, CATALOGUE);
    expect(text).toContain('Say #quot;hi#quot; [now] #124; #35;1 #lt;b#gt;<br/>');
    expect(text).toContain('|"business.name == #quot;A \\#quot;quoted\\#quot; #124; name#quot;"|');
    // Every label is closed before the end of its line.
    for (const line of text.split('\n')) {
      expect((line.match(/"/g) ?? []).length % 2).toBe(0);
    }
  });

  it('is deterministic', () => {
    expect(toMermaid(workloadCopy(), CATALOGUE)).toBe(chart);
  });
});

describe('describeRule', () => {
  it.each([
    [{ '>': [{ var: 'a.b' }, 1] }, 'a.b > 1'],
    [{ and: [{ var: 'a.b' }, { '!': { var: 'a.c' } }] }, 'a.b and not a.c'],
    [
      { or: [{ '==': [{ var: 'a.b' }, 'x'] }, { '<': [1, { var: 'a.c' }, 3] }] },
      '(a.b == "x") or (1 < a.c < 3)',
    ],
    [{ if: [{ var: 'a.b' }, 1, 2] }, 'if a.b then 1 else 2'],
    [{ in: ['x', { cat: [{ var: 'a.b' }, 'y'] }] }, '"x" in cat(a.b, "y")'],
    [{ var: ['a.b', 0] }, 'a.b ?? 0'],
    [true, 'true'],
  ])('%j reads %s', (rule, text) => {
    expect(describeRule(rule)).toBe(text);
  });
});
