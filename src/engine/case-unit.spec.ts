import { describe, expect, it } from '@jest/globals';
import type { CaseState, LookupRecord, StepRunRecord } from '#case-machine';
import { fold, toUnit, type Changed } from './case-unit.js';

const AT = new Date('2026-01-02T03:04:05.000Z');

const run = (id: string, state: StepRunRecord['state']): StepRunRecord => ({
  id,
  caseId: 'case',
  stepId: id,
  agency: 'skatteverket',
  action: 'act',
  kind: 'automatic',
  state,
  attempt: 1,
  maxAttempts: 3,
  disclosedFactIds: [],
  result: null,
  agencyReference: null,
  expectedDecisionAt: null,
  deadlineAt: null,
  timerArmedFor: null,
  overdue: false,
  lastError: null,
  readyAt: null,
  dispatchedAt: null,
  finishedAt: null,
  updatedAt: AT,
});

const lookup = (id: string, state: LookupRecord['state']): LookupRecord => ({
  id,
  caseId: 'case',
  subjectId: 'subject',
  agency: 'skatteverket',
  factKeys: ['person.address'],
  state,
  foundKeys: [],
  unavailableKeys: [],
  attempt: 1,
  maxAttempts: 5,
  disclosedFactIds: [],
  lastError: null,
  createdAt: AT,
  updatedAt: AT,
  answeredAt: null,
});

function stateAt(revision: number, runs: StepRunRecord[], lookups: LookupRecord[]): CaseState {
  return {
    caseRecord: {
      id: 'case',
      subjectId: 'subject',
      lifeEventKey: 'move-house',
      definitionId: 'def',
      definitionVersion: 1,
      status: 'running',
      revision,
      createdAt: AT,
      updatedAt: AT,
      submittedAt: AT,
      finishedAt: null,
      consentChecksum: null,
      consentedAt: null,
    },
    runs,
    lookups,
    facts: new Map(),
  };
}

describe('fold', () => {
  it('writes one change: the last state of every record any decision touched, every event in order', () => {
    const first: Changed = {
      outcome: 'changed',
      state: stateAt(11, [run('a', 'completed'), run('b', 'ready')], [lookup('l', 'pending')]),
      events: [
        {
          type: 'step-completed',
          stepId: 'a',
          data: { attempt: 1, producedKeys: [], reference: null },
        },
      ],
      effects: [],
      writes: {
        runs: [run('a', 'completed'), run('b', 'ready')],
        newLookups: [lookup('l', 'pending')],
        changedLookups: [],
        facts: [],
      },
    };
    const second: Changed = {
      outcome: 'changed',
      state: stateAt(13, [run('a', 'completed'), run('b', 'completed')], [lookup('l', 'answered')]),
      events: [
        {
          type: 'step-completed',
          stepId: 'b',
          data: { attempt: 1, producedKeys: [], reference: null },
        },
        { type: 'case-completed' },
      ],
      effects: [],
      writes: {
        runs: [run('b', 'completed')],
        newLookups: [],
        changedLookups: [lookup('l', 'answered')],
        facts: [],
      },
    };
    const folded = fold([first, second]);
    expect(folded.state).toBe(second.state);
    expect(folded.events.map((e) => e.type)).toEqual([
      'step-completed',
      'step-completed',
      'case-completed',
    ]);
    expect(folded.writes.runs.map((r) => [r.id, r.state])).toEqual([
      ['a', 'completed'],
      ['b', 'completed'],
    ]);
    // Created by the first, answered by the second: inserted once, as answered.
    expect(folded.writes.newLookups.map((l) => [l.id, l.state])).toEqual([['l', 'answered']]);
    expect(folded.writes.changedLookups).toEqual([]);
    // Its events are numbered on from the revision the first was decided on.
    const unit = toUnit(folded, { expectedRevision: 10, revision: 10, factsRevision: 3 });
    expect(unit.events.map((e) => e.seq)).toEqual([11, 12, 13]);
    expect(unit.caseRecord.revision).toBe(13);
    expect(unit.subjectFence).toEqual({ expected: 3, bump: false });
  });

  it('is the decision itself for one', () => {
    const only: Changed = {
      outcome: 'changed',
      state: stateAt(1, [], []),
      events: [{ type: 'case-completed' }],
      effects: [],
      writes: { runs: [], newLookups: [], changedLookups: [], facts: [] },
    };
    expect(fold([only])).toBe(only);
  });
});
