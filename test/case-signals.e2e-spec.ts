import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CaseChanges } from '../src/engine/case-changes.js';
import { CaseSignals } from '../src/engine/case-signals.js';
import type { CaseRecord } from '../src/engine/engine.types.js';
import { startTestApp, type TestApp } from './support/test-env.js';

/** What `Prefer: wait` and live events rest on: a waiter hears every change of its case. */
describe('case signals', () => {
  let leo: TestApp;
  beforeAll(async () => {
    leo = await startTestApp({ LEO_ROLE: 'api' });
  });
  afterAll(async () => {
    await leo.close();
  });

  it('does not miss a change committed while its first check runs', async () => {
    const signals = leo.app.get(CaseSignals);
    const changes = leo.app.get(CaseChanges);
    const caseId = '0190a1b2-0000-7000-8000-000000000001';
    let calls = 0;
    // The first check sees nothing yet, and the case changes while it runs (a look-up answered
    // right after the case was opened). Polls and the time limit are far beyond this test's
    // own limit: only the change's signal can end the wait in time.
    const waited = signals.waitFor(
      caseId,
      async () => {
        calls += 1;
        if (calls > 1) return 'seen';
        changes.emit({
          caseRecord: { id: caseId, status: 'open' } as CaseRecord,
          previousStatus: 'open',
          events: [],
          steps: [],
          committedAt: new Date(),
        });
        // The check is slow (a busy database): the change's signal has gone out meanwhile.
        await new Promise((r) => setTimeout(r, 300));
        return undefined;
      },
      120_000,
      120_000,
    );
    await expect(waited).resolves.toBe('seen');
    expect(calls).toBe(2);
  }, 15_000);

  it("gives the caller the first check's error", async () => {
    const signals = leo.app.get(CaseSignals);
    await expect(
      signals.waitFor(
        '0190a1b2-0000-7000-8000-000000000002',
        () => Promise.reject(new Error('not yours')),
        60_000,
      ),
    ).rejects.toThrow('not yours');
  });
});
