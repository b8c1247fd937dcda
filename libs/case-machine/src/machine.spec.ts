/**
 * The case machine, input by input: given a case in some state, when one input arrives, then these
 * events, effects and writes (or this refusal, or nothing). A small hand-written life event runs on
 * a deterministic environment (fixed clock, `random` 0.5, counting ids); the seeded life events
 * of config/ are seeded.spec.ts's.
 *
 * Every call goes through `Driver.apply`, which also checks what holds of any decision: the input
 * state is deep-frozen and equal to a copy taken before, the revision advances by the number of
 * events, and an unchanged or refused decision carries nothing.
 */
import { describe, expect, it } from '@jest/globals';
import type { LookupOutcome, StepOutcome } from '#agency-contract';
import { createFactValidator } from '#facts';
import {
  validate,
  withDefaults,
  type Agency,
  type Catalogue,
  type DefinitionWithDefaults,
  type FactSource,
  type FactType,
  type LifeEventDefinition,
} from '#workflow';
import {
  CaseDriver,
  PN,
  T0,
  changed,
  completed,
  deterministicEnv,
  effects,
  kinds,
  must,
  refused,
  retryable,
} from '../test/driver.js';
import {
  DEADLINE_TOLERANCE_MS,
  IDENTITY_FACT,
  backoffDelayMs,
  decide,
  isHeldByConfigurationFault,
  lookupBackoffMs,
  type CaseInput,
  type Environment,
  type FactRecord,
} from './index.js';

// ---- the life event ----------------------------------------------------------------------------

const CITIZEN: FactSource = { kind: 'citizen' };
const PRODUCED: FactSource = { kind: 'produced' };
const FROM_REGISTER: FactSource = { kind: 'lookup', agency: 'register' };

function fact(key: string, source: FactSource, schema: Record<string, unknown>): FactType {
  return { key, schema, label: { sv: key, en: key }, sensitivity: 'personal', source };
}

const FACTS: FactType[] = [
  fact(IDENTITY_FACT, CITIZEN, { type: 'string' }),
  fact('person.name', FROM_REGISTER, { type: 'string' }),
  fact('biz.name', CITIZEN, { type: 'string', minLength: 2 }),
  fact('biz.turnover', CITIZEN, { type: 'integer', minimum: 0 }),
  fact('biz.employs', CITIZEN, { type: 'boolean' }),
  fact('biz.orgNumber', PRODUCED, { type: 'string' }),
  fact('biz.taxStatus', PRODUCED, { enum: ['F', 'FA'] }),
  fact('biz.employerId', PRODUCED, { type: 'string' }),
  fact('biz.signed', PRODUCED, { type: 'boolean' }),
];

function action(name: string, produces: string[]): Agency['actions'][number] {
  return { name, title: { sv: name, en: name }, produces };
}

const AGENCIES: Agency[] = [
  {
    code: 'register',
    name: { sv: 'Registret', en: 'The register' },
    adapter: 'mock',
    actions: [action('register-business', ['biz.orgNumber'])],
    lookups: ['person.name'],
  },
  {
    code: 'tax',
    name: { sv: 'Skatten', en: 'The tax agency' },
    adapter: 'mock',
    actions: [
      action('register-tax', ['biz.taxStatus']),
      action('register-employer', ['biz.employerId']),
    ],
    lookups: [],
  },
  {
    code: 'portal',
    name: { sv: 'Portalen', en: 'The portal' },
    adapter: 'mock',
    actions: [action('sign-declaration', ['biz.signed'])],
    lookups: [],
  },
];

const CATALOGUE: Catalogue = {
  facts: new Map(FACTS.map((f) => [f.key, f])),
  agencies: new Map(AGENCIES.map((a) => [a.code, a])),
};
const VALIDATOR = createFactValidator(FACTS);

/**
 * register (automatic, 3 attempts, PT1H, looks up the name) → tax (decision, P30D, fails the case)
 * and employer (automatic, only if the business employs) → sign (a citizen task after tax, P7D).
 */
const SOURCE: LifeEventDefinition = {
  key: 'open-business',
  version: 1,
  title: { sv: 'Öppna', en: 'Open' },
  description: { sv: 'Öppna', en: 'Open' },
  inputs: [IDENTITY_FACT, 'person.name', 'biz.name', 'biz.turnover', 'biz.employs'],
  steps: [
    {
      id: 'register',
      agency: 'register',
      action: 'register-business',
      kind: 'automatic',
      needs: [IDENTITY_FACT, 'person.name', 'biz.name'],
      produces: ['biz.orgNumber'],
      retry: {
        attempts: 3,
        backoff: {
          type: 'exponential',
          initialDelayMs: 1000,
          maxDelayMs: 60_000,
          multiplier: 2,
          jitter: 0.2,
        },
      },
      deadline: 'PT1H',
    },
    {
      id: 'tax',
      agency: 'tax',
      action: 'register-tax',
      kind: 'decision',
      needs: ['biz.orgNumber', 'biz.turnover'],
      produces: ['biz.taxStatus'],
      deadline: 'P30D',
      onFailure: 'fail-case',
    },
    {
      id: 'employer',
      agency: 'tax',
      action: 'register-employer',
      kind: 'automatic',
      when: { '==': [{ var: 'biz.employs' }, true] },
      needs: ['biz.orgNumber'],
      produces: ['biz.employerId'],
    },
    {
      id: 'sign',
      agency: 'portal',
      action: 'sign-declaration',
      kind: 'citizen-task',
      after: ['tax'],
      needs: [],
      produces: ['biz.signed'],
      deadline: 'P7D',
    },
  ],
};
const DEFINITION: DefinitionWithDefaults = withDefaults(SOURCE);

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const ANSWERS = { 'biz.name': 'Kaffe AB', 'biz.turnover': 500_000, 'biz.employs': true };

// ---- helpers -------------------------------------------------------------------------------

/** A fresh deterministic environment of the hand-written life event (test/driver.ts). */
function makeEnv(overrides: Partial<Environment> = {}): Environment {
  return deterministicEnv(
    { definition: DEFINITION, catalogue: CATALOGUE, validator: VALIDATOR },
    overrides,
  );
}

/** A case of the hand-written life event (test/driver.ts), with its usual starting points. */
class Driver extends CaseDriver {
  constructor(overrides: Partial<Environment> = {}, caseId?: string) {
    super(makeEnv(overrides), caseId);
  }

  /** Opened with `answers`, the name found in the register: ready to submit. */
  static ready(answers: Record<string, unknown> = ANSWERS, env: Partial<Environment> = {}) {
    const driver = new Driver(env);
    changed(driver.open(answers));
    changed(
      driver.apply(driver.lookupResult({ outcome: 'found', facts: { 'person.name': 'Ada' } })),
    );
    return driver;
  }

  /** Submitted: the register step dispatched. */
  static submitted(answers: Record<string, unknown> = ANSWERS, env: Partial<Environment> = {}) {
    const driver = Driver.ready(answers, env);
    changed(driver.apply(driver.submitInput()));
    return driver;
  }

  /** The business registered: tax and (if it employs) employer dispatched. */
  static registered(answers: Record<string, unknown> = ANSWERS) {
    const driver = Driver.submitted(answers);
    changed(
      driver.apply(
        driver.result('register', { outcome: 'completed', produced: { 'biz.orgNumber': '556-1' } }),
      ),
    );
    return driver;
  }
}

// ---- the tests -----------------------------------------------------------------------------

describe('the hand-written life event', () => {
  it('validates against its catalogue without diagnostics', () => {
    expect(validate(SOURCE, CATALOGUE)).toEqual([]);
  });
});

describe('open', () => {
  it('records the identity from the e-identification and the answers, and looks up the name by the identity alone', () => {
    const driver = new Driver();
    const decision = changed(driver.open(ANSWERS));

    expect(kinds(decision.events)).toEqual(['case-opened', 'lookup-requested']);
    expect(decision.events[0]).toEqual({
      type: 'case-opened',
      data: {
        lifeEvent: 'open-business',
        version: 1,
        factKeys: ['biz.name', 'biz.turnover', 'biz.employs'],
      },
    });
    expect(decision.state.caseRecord).toMatchObject({
      id: 'case-1',
      status: 'open',
      revision: 2,
      createdAt: T0,
      submittedAt: null,
    });

    const identity = driver.record(IDENTITY_FACT);
    expect(identity).toMatchObject({
      value: PN,
      source: 'e-identification',
      caseId: 'case-1',
      agency: null,
      supersedes: null,
    });
    expect(decision.writes.facts.map((f) => [f.factKey, f.value, f.source])).toEqual([
      [IDENTITY_FACT, PN, 'e-identification'],
      ['biz.name', 'Kaffe AB', 'citizen'],
      ['biz.turnover', 500_000, 'citizen'],
      ['biz.employs', true, 'citizen'],
    ]);
    expect(decision.writes.runs.map((r) => [r.stepId, r.state, r.maxAttempts])).toEqual([
      ['register', 'pending', 3],
      ['tax', 'pending', 5],
      ['employer', 'pending', 5],
      ['sign', 'pending', 5],
    ]);

    const [lookup] = decision.writes.newLookups;
    expect(decision.writes.newLookups).toHaveLength(1);
    expect(lookup).toMatchObject({
      agency: 'register',
      factKeys: ['person.name'],
      state: 'pending',
      attempt: 1,
      disclosedFactIds: [identity.id],
    });
    const lookupId = must(lookup, 'look-up').id;
    expect(decision.effects).toEqual([
      {
        type: 'request-lookup',
        agency: 'register',
        jobId: `${lookupId}.1.lookup`,
        job: {
          caseId: 'case-1',
          lookupId,
          attempt: 1,
          idempotencyKey: lookupId,
          facts: { [IDENTITY_FACT]: PN },
          factKeys: ['person.name'],
        },
        availableAt: T0,
      },
      {
        type: 'disclose',
        disclosure: {
          subjectId: 'subject-1',
          caseId: 'case-1',
          lookupId,
          agency: 'register',
          factRecordIds: [identity.id],
          factKeys: [IDENTITY_FACT],
          basis: 'lookup',
        },
      },
    ]);
  });

  it('reuses the subject’s records: no second identity record and no look-up of a known name', () => {
    const previous = (factKey: string, value: unknown, id: string): FactRecord => ({
      id,
      subjectId: 'subject-1',
      factKey,
      value,
      source: factKey === IDENTITY_FACT ? 'e-identification' : 'lookup',
      agency: factKey === IDENTITY_FACT ? null : 'register',
      caseId: 'case-0',
      stepRunId: null,
      lookupId: null,
      supersedes: null,
      createdAt: new Date(T0.getTime() - DAY),
    });
    const facts = new Map([
      [IDENTITY_FACT, previous(IDENTITY_FACT, PN, 'old-pn')],
      ['person.name', previous('person.name', 'Ada', 'old-name')],
    ]);
    const driver = new Driver();
    const decision = changed(driver.open(ANSWERS, facts));
    expect(kinds(decision.events)).toEqual(['case-opened']);
    expect(decision.writes.facts.map((f) => f.factKey)).toEqual([
      'biz.name',
      'biz.turnover',
      'biz.employs',
    ]);
    expect(decision.effects).toEqual([]);
    expect(driver.record(IDENTITY_FACT).id).toBe('old-pn');
  });

  it('refuses invalid answers with a problem per field, and records nothing', () => {
    const driver = new Driver();
    const refusal = refused(
      driver.open({
        'biz.name': 'K',
        'biz.turnover': -1,
        'biz.employs': 'yes',
        'biz.orgNumber': '556-1',
        'person.name': 'Ada',
        [IDENTITY_FACT]: '191212121212',
        'unknown.fact': 1,
      }),
    );
    expect(refusal).toMatchObject({ kind: 'invalid', code: 'validation-failed' });
    expect(refusal.problems?.map((p) => [p.path, p.code])).toEqual([
      ['answers.biz.name', 'invalid-value'],
      ['answers.biz.turnover', 'invalid-value'],
      ['answers.biz.employs', 'invalid-value'],
      ['answers.biz.orgNumber', 'unexpected-fact'],
      ['answers.person.name', 'provided-by-agency'],
      [`answers.${IDENTITY_FACT}`, 'from-e-identification'],
      ['answers.unknown.fact', 'unexpected-fact'],
    ]);
    for (const problem of refusal.problems ?? []) expect(problem.reason).not.toBe('');
  });
});

describe('answer', () => {
  it('records valid answers as the citizen’s and supersedes earlier ones', () => {
    const driver = new Driver();
    changed(driver.open({ 'biz.name': 'Kaffe AB' }));
    const first = driver.record('biz.name');
    const decision = changed(
      driver.apply({ type: 'answer', answers: { 'biz.name': 'Te AB', 'biz.employs': false } }),
    );
    expect(decision.events).toEqual([
      { type: 'answers-given', data: { factKeys: ['biz.name', 'biz.employs'] } },
    ]);
    expect(driver.record('biz.name')).toMatchObject({
      value: 'Te AB',
      source: 'citizen',
      supersedes: first.id,
    });
    expect(decision.effects).toEqual([]);
  });

  it('refuses the whole input when one answer is invalid, with no events', () => {
    const driver = new Driver();
    changed(driver.open({}));
    const refusal = refused(
      driver.apply({ type: 'answer', answers: { 'biz.name': 'Te AB', 'biz.turnover': 1.5 } }),
    );
    expect(refusal.problems?.map((p) => p.path)).toEqual(['answers.biz.turnover']);
    expect(driver.state.facts.has('biz.name')).toBe(false);
  });

  it('takes a looked-up fact from the citizen once the register had no value for it', () => {
    const driver = new Driver();
    changed(driver.open(ANSWERS));
    const answer: CaseInput = { type: 'answer', answers: { 'person.name': 'Ada' } };
    expect(refused(driver.apply(answer)).problems?.[0]?.code).toBe('provided-by-agency');
    const none = changed(
      driver.apply(
        driver.lookupResult({ outcome: 'found', facts: {}, unavailable: ['person.name'] }),
      ),
    );
    expect(none.events).toEqual([
      {
        type: 'lookup-answered',
        data: { agency: 'register', foundKeys: [], unavailableKeys: ['person.name'] },
      },
    ]);
    changed(driver.apply(answer));
    expect(driver.record('person.name').source).toBe('citizen');
  });

  it('is refused once the case is submitted', () => {
    const driver = Driver.submitted();
    expect(refused(driver.apply({ type: 'answer', answers: { 'biz.name': 'Te AB' } }))).toEqual(
      expect.objectContaining({ kind: 'conflict', code: 'case-not-open' }),
    );
  });
});

describe('lookup-result', () => {
  it('records the found facts with the register as their source', () => {
    const driver = new Driver();
    changed(driver.open(ANSWERS));
    const decision = changed(
      driver.apply(driver.lookupResult({ outcome: 'found', facts: { 'person.name': 'Ada' } })),
    );
    expect(kinds(decision.events)).toEqual(['lookup-answered']);
    const lookup = must(driver.state.lookups[0], 'look-up');
    expect(driver.record('person.name')).toMatchObject({
      value: 'Ada',
      source: 'lookup',
      agency: 'register',
      lookupId: lookup.id,
    });
    expect(lookup).toMatchObject({ state: 'answered', foundKeys: ['person.name'] });
    expect(decision.writes.changedLookups).toEqual([lookup]);
    expect(driver.status).toBe('open');
  });

  it('retries a retryable error with a backoff from `random`', () => {
    const driver = new Driver();
    changed(driver.open(ANSWERS));
    const decision = changed(
      driver.apply(driver.lookupResult({ outcome: 'retryable-error', code: 'x', reason: 'y' })),
    );
    const delayMs = lookupBackoffMs(1, 0.5);
    expect(delayMs).toBe(450);
    expect(decision.events).toEqual([
      {
        type: 'lookup-requested',
        data: { agency: 'register', factKeys: ['person.name'], attempt: 2, delayMs },
      },
    ]);
    const [request] = effects(decision, 'request-lookup');
    expect(request?.job.attempt).toBe(2);
    expect(request?.availableAt).toEqual(new Date(T0.getTime() + delayMs));
    expect(effects(decision, 'disclose')).toHaveLength(1);
  });

  it('ignores a stale attempt, another agency and an unknown look-up', () => {
    const driver = new Driver();
    changed(driver.open(ANSWERS));
    const found: LookupOutcome = { outcome: 'found', facts: { 'person.name': 'Ada' } };
    expect(driver.apply(driver.lookupResult(found, 2))).toEqual({
      outcome: 'unchanged',
      reason: 'stale attempt',
    });
    expect(driver.apply(driver.lookupResult(found, 1, 'tax')).outcome).toBe('unchanged');
    const unknown = driver.lookupResult(found);
    if (unknown.type === 'lookup-result') unknown.result.lookupId = 'nope';
    expect(driver.apply(unknown).outcome).toBe('unchanged');
    changed(driver.apply(driver.lookupResult(found)));
    expect(driver.apply(driver.lookupResult(found))).toEqual({
      outcome: 'unchanged',
      reason: 'look-up is answered',
    });
  });
});

describe('submit', () => {
  it('is refused while the look-up is in flight (resolution-pending)', () => {
    const driver = new Driver();
    changed(driver.open(ANSWERS));
    expect(refused(driver.apply({ type: 'submit', previewChecksum: 'x' }))).toMatchObject({
      kind: 'conflict',
      code: 'resolution-pending',
    });
  });

  it('is refused while answers are missing (answers-missing), naming them', () => {
    const driver = Driver.ready({ 'biz.name': 'Kaffe AB' });
    const refusal = refused(driver.apply({ type: 'submit', previewChecksum: 'x' }));
    expect(refusal).toMatchObject({ kind: 'conflict', code: 'answers-missing' });
    expect(refusal.message).toContain('biz.employs');
    expect(refusal.message).toContain('biz.turnover');
  });

  it('is refused when the preview changed since it was shown (preview-stale)', () => {
    const driver = Driver.ready();
    const shown = driver.submitInput();
    changed(driver.apply({ type: 'answer', answers: { 'biz.name': 'Te AB' } }));
    const refusal = refused(driver.apply(shown));
    expect(refusal).toMatchObject({ kind: 'conflict', code: 'preview-stale' });
    expect(refusal.problems?.[0]?.path).toBe('previewChecksum');
    expect(driver.status).toBe('open');
  });

  it('dispatches exactly the ready steps, each job carrying exactly its needs, each disclosed', () => {
    const driver = Driver.ready();
    const input = driver.submitInput();
    const decision = changed(driver.apply(input));
    expect(kinds(decision.events)).toEqual(['case-submitted', 'step-dispatched:register']);
    expect(decision.state.caseRecord).toMatchObject({
      status: 'running',
      submittedAt: T0,
      consentedAt: T0,
      consentChecksum: input.type === 'submit' ? input.previewChecksum : '',
    });

    const run = driver.run('register');
    const records = [IDENTITY_FACT, 'person.name', 'biz.name'].map((k) => driver.record(k));
    const [dispatched] = effects(decision, 'dispatch-step');
    expect(effects(decision, 'dispatch-step')).toHaveLength(1);
    expect(dispatched).toEqual({
      type: 'dispatch-step',
      agency: 'register',
      jobId: `${run.id}.1`,
      job: {
        caseId: 'case-1',
        stepRunId: run.id,
        stepId: 'register',
        action: 'register-business',
        attempt: 1,
        idempotencyKey: run.id,
        facts: { [IDENTITY_FACT]: PN, 'person.name': 'Ada', 'biz.name': 'Kaffe AB' },
        deadline: new Date(T0.getTime() + HOUR).toISOString(),
      },
      availableAt: T0,
    });
    expect(effects(decision, 'disclose')).toEqual([
      {
        type: 'disclose',
        disclosure: {
          subjectId: 'subject-1',
          caseId: 'case-1',
          stepRunId: run.id,
          agency: 'register',
          factRecordIds: records.map((r) => r.id),
          factKeys: [IDENTITY_FACT, 'person.name', 'biz.name'],
          basis: 'consent',
        },
      },
    ]);
    expect(run).toMatchObject({
      state: 'ready',
      attempt: 1,
      disclosedFactIds: records.map((r) => r.id),
      deadlineAt: new Date(T0.getTime() + HOUR),
      timerArmedFor: new Date(T0.getTime() + HOUR),
    });
    expect(effects(decision, 'arm-timer')).toEqual([
      {
        type: 'arm-timer',
        jobId: `${run.id}.deadline.${String(T0.getTime() + HOUR)}`,
        job: {
          caseId: 'case-1',
          stepRunId: run.id,
          deadline: new Date(T0.getTime() + HOUR).toISOString(),
        },
        at: new Date(T0.getTime() + HOUR),
      },
    ]);
    expect(effects(decision, 'notify').map((e) => e.message.template)).toEqual(['case-submitted']);
    expect(['tax', 'employer', 'sign'].map((id) => driver.run(id).state)).toEqual([
      'pending',
      'pending',
      'pending',
    ]);
    // The same consent again changes nothing (a retry whose answer was lost); another is
    // refused: the case is running.
    expect(driver.apply(input)).toEqual({ outcome: 'unchanged', reason: 'already-submitted' });
    expect(refused(driver.apply({ type: 'submit', previewChecksum: 'another' })).code).toBe(
      'case-not-open',
    );
  });

  it('skips a step whose condition is false as soon as it is known', () => {
    const driver = Driver.ready({ ...ANSWERS, 'biz.employs': false });
    const decision = changed(driver.apply(driver.submitInput()));
    expect(kinds(decision.events)).toEqual([
      'case-submitted',
      'step-dispatched:register',
      'step-skipped:employer',
    ]);
    expect(driver.run('employer').finishedAt).toEqual(T0);
  });

  it('leaves the deadline timer to the sweep when it is far off (lazy arming)', () => {
    const driver = Driver.ready(ANSWERS, {
      timers: { armAfterMs: 60_000, sweepIntervalMs: 60_000 },
    });
    const decision = changed(driver.apply(driver.submitInput()));
    expect(effects(decision, 'arm-timer')).toEqual([]);
    expect(driver.run('register')).toMatchObject({
      deadlineAt: new Date(T0.getTime() + HOUR),
      timerArmedFor: null,
    });
  });
});

describe('step-result', () => {
  it('records the produced facts as the agency’s and dispatches what they made ready', () => {
    const driver = Driver.submitted();
    const register = driver.run('register');
    const decision = changed(
      driver.apply(driver.result('register', completed({ 'biz.orgNumber': '556-1' }, 'R-1')), 10),
    );
    expect(kinds(decision.events)).toEqual([
      'step-completed:register',
      'step-dispatched:tax',
      'step-dispatched:employer',
    ]);
    expect(decision.events[0]).toMatchObject({
      data: { attempt: 1, producedKeys: ['biz.orgNumber'], reference: 'R-1' },
    });
    const org = driver.record('biz.orgNumber');
    expect(org).toMatchObject({
      value: '556-1',
      source: 'agency',
      agency: 'register',
      stepRunId: register.id,
      caseId: 'case-1',
    });
    expect(decision.writes.facts).toEqual([org]);
    expect(driver.run('register')).toMatchObject({
      state: 'completed',
      agencyReference: 'R-1',
      finishedAt: new Date(T0.getTime() + 10),
    });

    const dispatches = effects(decision, 'dispatch-step');
    expect(dispatches.map((d) => [d.job.stepId, d.job.facts])).toEqual([
      ['tax', { 'biz.orgNumber': '556-1', 'biz.turnover': 500_000 }],
      ['employer', { 'biz.orgNumber': '556-1' }],
    ]);
    expect(effects(decision, 'disclose').map((d) => d.disclosure.factRecordIds)).toEqual([
      [org.id, driver.record('biz.turnover').id],
      [org.id],
    ]);
    expect(effects(decision, 'disclose').map((d) => d.disclosure.stepRunId)).toEqual(
      dispatches.map((d) => d.job.stepRunId),
    );
    expect(driver.status).toBe('running');
  });

  it('completes the case with case-completed once every step is final', () => {
    const driver = Driver.registered();
    changed(driver.apply(driver.result('employer', completed({ 'biz.employerId': 'E-1' }))));
    const pending = changed(
      driver.apply(driver.result('tax', { outcome: 'pending', reference: 'T-1' })),
    );
    expect(kinds(pending.events)).toEqual(['step-awaiting-decision:tax']);
    const decided = changed(
      driver.apply(driver.result('tax', completed({ 'biz.taxStatus': 'F' }))),
    );
    expect(kinds(decided.events)).toEqual(['step-completed:tax', 'step-awaiting-citizen:sign']);
    expect(driver.status).toBe('running');
    const done = changed(
      driver.apply({ type: 'task-completed', stepId: 'sign', produced: { 'biz.signed': true } }),
    );
    expect(kinds(done.events)).toEqual(['citizen-task-completed:sign', 'case-completed']);
    expect(driver.state.caseRecord).toMatchObject({
      status: 'completed',
      finishedAt: T0,
      revision: driver.state.caseRecord.revision,
    });
    expect(effects(done, 'notify').map((e) => e.message.template)).toEqual(['case-completed']);
  });

  it.each([
    ['an undeclared fact', { 'biz.orgNumber': '556-1', 'biz.taxStatus': 'F' }, 'undeclared'],
    ['a missing fact', {}, 'missing'],
    ['an invalid value', { 'biz.orgNumber': 42 }, 'invalid-value'],
  ])(
    'fails the step on %s and requires action (onFailure action-required)',
    (_, produced, code) => {
      const driver = Driver.submitted();
      const decision = changed(driver.apply(driver.result('register', completed(produced))));
      expect(kinds(decision.events)).toEqual([
        'result-refused:register',
        'step-failed:register',
        'case-action-required:register',
      ]);
      expect(decision.events[0]).toMatchObject({
        data: { problems: [expect.objectContaining({ code })] },
      });
      expect(decision.events[1]).toMatchObject({ data: { code: 'invalid-result' } });
      expect(decision.writes.facts).toEqual([]);
      expect(driver.state.facts.has('biz.orgNumber')).toBe(false);
      expect(driver.run('register')).toMatchObject({
        state: 'failed',
        lastError: 'invalid-result',
      });
      expect(driver.status).toBe('action-required');
      expect(driver.state.caseRecord.finishedAt).toBeNull();
    },
  );

  it('fails the case on a bad result of a fail-case step, cancelling what is in flight', () => {
    const driver = Driver.registered();
    const employer = driver.run('employer');
    const decision = changed(
      driver.apply(driver.result('tax', completed({ 'biz.employerId': 'E-1' }))),
    );
    expect(kinds(decision.events)).toEqual([
      'result-refused:tax',
      'step-failed:tax',
      'step-cancelled:employer',
      'step-cancelled:sign',
    ]);
    expect(driver.status).toBe('failed');
    expect(driver.state.caseRecord.finishedAt).toEqual(T0);
    expect(effects(decision, 'cancel-step')).toEqual([
      {
        type: 'cancel-step',
        agency: 'tax',
        jobId: `${employer.id}.cancel`,
        job: {
          caseId: 'case-1',
          stepRunId: employer.id,
          action: 'register-employer',
          idempotencyKey: employer.id,
          reason: 'case failed',
        },
      },
    ]);
    expect(effects(decision, 'notify').map((e) => e.message.template)).toEqual(['case-failed']);
  });

  it('fails the case when a fail-case step is rejected', () => {
    const driver = Driver.registered();
    const decision = changed(
      driver.apply(
        driver.result('tax', { outcome: 'rejected', code: 'debts', reason: 'Tax debts' }),
      ),
    );
    expect(kinds(decision.events)).toEqual([
      'step-rejected:tax',
      'step-failed:tax',
      'step-cancelled:employer',
      'step-cancelled:sign',
    ]);
    expect(driver.run('tax')).toMatchObject({ state: 'failed', lastError: 'debts' });
    expect(driver.status).toBe('failed');
  });

  it('changes nothing for a stale attempt, another agency, a duplicate or a finished case', () => {
    const driver = Driver.submitted();
    const ok = completed({ 'biz.orgNumber': '556-1' });
    expect(driver.apply(driver.result('register', ok, 2))).toEqual({
      outcome: 'unchanged',
      reason: 'stale attempt',
    });
    const foreign = driver.result('register', ok);
    if (foreign.type === 'step-result') foreign.result.agency = 'tax';
    expect(driver.apply(foreign)).toEqual({ outcome: 'unchanged', reason: 'from another agency' });
    const unknown = driver.result('register', ok);
    if (unknown.type === 'step-result') unknown.result.stepRunId = 'nope';
    expect(driver.apply(unknown).outcome).toBe('unchanged');

    const first = driver.result('register', ok);
    changed(driver.apply(first));
    expect(driver.apply(first)).toEqual({ outcome: 'unchanged', reason: 'step is completed' });
    expect(driver.apply(driver.result('register', retryable, 1)).outcome).toBe('unchanged');

    const taxDone = driver.result('tax', completed({ 'biz.taxStatus': 'F' }));
    changed(driver.apply({ type: 'cancel', reason: 'changed my mind', by: 'citizen' }));
    const revision = driver.state.caseRecord.revision;
    expect(driver.apply(taxDone)).toEqual({ outcome: 'unchanged', reason: 'case is cancelled' });
    expect(driver.state.caseRecord.revision).toBe(revision);
  });

  it('schedules retries with the backoff from `random`, then fails the step after maxAttempts', () => {
    const driver = Driver.submitted();
    const run = driver.run('register');
    const step = must(DEFINITION.steps[0], 'register step');
    expect([backoffDelayMs(step, 2, 0.5), backoffDelayMs(step, 3, 0.5)]).toEqual([900, 1800]);

    const second = changed(driver.apply(driver.result('register', retryable), 100));
    expect(second.events).toEqual([
      {
        type: 'step-retry-scheduled',
        stepId: 'register',
        data: { code: 'down', attempt: 2, delayMs: 900 },
      },
      {
        type: 'step-dispatched',
        stepId: 'register',
        data: {
          attempt: 2,
          agency: 'register',
          factKeys: [IDENTITY_FACT, 'person.name', 'biz.name'],
          delayMs: 900,
        },
      },
    ]);
    const [redispatch] = effects(second, 'dispatch-step');
    expect(redispatch).toMatchObject({
      jobId: `${run.id}.2`,
      availableAt: new Date(T0.getTime() + 100 + 900),
      // A retry keeps the first attempt's deadline: no new timer.
      job: { attempt: 2, deadline: new Date(T0.getTime() + HOUR).toISOString() },
    });
    expect(effects(second, 'arm-timer')).toEqual([]);
    expect(effects(second, 'disclose')).toHaveLength(1);
    expect(driver.run('register')).toMatchObject({ attempt: 2, lastError: 'down' });

    const third = changed(driver.apply(driver.result('register', retryable), 200));
    expect(third.events[0]).toMatchObject({ data: { attempt: 3, delayMs: 1800 } });
    expect(effects(third, 'dispatch-step')[0]?.availableAt).toEqual(
      new Date(T0.getTime() + 200 + 1800),
    );

    const exhausted = changed(driver.apply(driver.result('register', retryable), 300));
    expect(kinds(exhausted.events)).toEqual([
      'step-attempts-exhausted:register',
      'step-failed:register',
      'case-action-required:register',
    ]);
    expect(exhausted.events[1]).toMatchObject({ data: { code: 'attempts-exhausted' } });
    expect(effects(exhausted, 'dispatch-step')).toEqual([]);
    expect(driver.status).toBe('action-required');
  });

  it('lets an in-flight step finish while the case requires action, without dispatching more', () => {
    const driver = Driver.registered();
    changed(
      driver.apply(driver.result('employer', { outcome: 'rejected', code: 'no', reason: 'no' })),
    );
    expect(driver.status).toBe('action-required');
    const decision = changed(
      driver.apply(driver.result('tax', completed({ 'biz.taxStatus': 'F' }))),
    );
    expect(kinds(decision.events)).toEqual(['step-completed:tax']);
    expect(driver.run('sign').state).toBe('pending');
    expect(driver.status).toBe('action-required');
  });
});

describe('step-result: a configuration fault (unknown-action)', () => {
  const unknownAction: StepOutcome = {
    outcome: 'retryable-error',
    code: 'unknown-action',
    reason: 'the mock of register has no action register-business, built in or configured',
  };
  const rejectedUnknown: StepOutcome = {
    outcome: 'rejected',
    code: 'unknown-action',
    reason: 'no handler for register-business',
  };

  /** Submitted, then the register step's first two attempts answered retryable: at its last (3). */
  function atLastAttempt(): Driver {
    const driver = Driver.submitted();
    changed(driver.apply(driver.result('register', retryable), 100));
    changed(driver.apply(driver.result('register', retryable), 200));
    expect(driver.run('register')).toMatchObject({ attempt: 3, maxAttempts: 3 });
    return driver;
  }

  it.each([
    ['a retryable error', unknownAction],
    ['a rejection (an older adapter)', rejectedUnknown],
  ])(
    'at the last attempt, %s does not fail the step but dispatches attempt maxAttempts + 1',
    (_, outcome) => {
      const driver = atLastAttempt();
      const run = driver.run('register');
      const step = must(DEFINITION.steps[0], 'register step');
      const delayMs = backoffDelayMs(step, 4, 0.5);
      expect(delayMs).toBe(3600);

      const decision = changed(driver.apply(driver.result('register', outcome), 300));
      expect(decision.events).toEqual([
        {
          type: 'step-configuration-fault',
          stepId: 'register',
          data: {
            code: 'unknown-action',
            agency: 'register',
            action: 'register-business',
            attempt: 4,
            delayMs,
          },
        },
        {
          type: 'step-dispatched',
          stepId: 'register',
          data: {
            attempt: 4,
            agency: 'register',
            factKeys: [IDENTITY_FACT, 'person.name', 'biz.name'],
            delayMs,
          },
        },
      ]);
      expect(kinds(decision.events)).not.toContain('step-attempts-exhausted:register');
      expect(kinds(decision.events)).not.toContain('step-failed:register');
      expect(kinds(decision.events)).not.toContain('step-rejected:register');
      const [redispatch] = effects(decision, 'dispatch-step');
      expect(redispatch).toMatchObject({
        agency: 'register',
        jobId: `${run.id}.4`,
        availableAt: new Date(T0.getTime() + 300 + delayMs),
        job: { attempt: 4, idempotencyKey: run.id, action: 'register-business' },
      });
      // Nobody is told of a refusal: it is not one.
      expect(effects(decision, 'notify')).toEqual([]);
      expect(driver.run('register')).toMatchObject({
        state: 'ready',
        attempt: 4,
        // The attempt the fault took does not count against the retry policy.
        maxAttempts: 4,
        lastError: 'unknown-action',
      });
      expect(driver.status).toBe('running');
      expect(isHeldByConfigurationFault(driver.run('register'))).toBe(true);
    },
  );

  it('keeps retrying however many attempts it takes, then completes once the action is served', () => {
    const driver = atLastAttempt();
    for (let attempt = 4; attempt <= 12; attempt += 1) {
      const decision = changed(driver.apply(driver.result('register', unknownAction)));
      expect(kinds(decision.events)).toEqual([
        'step-configuration-fault:register',
        'step-dispatched:register',
      ]);
      expect(driver.run('register')).toMatchObject({ state: 'ready', attempt });
    }
    // The backoff is capped at the step's maxDelayMs (60 s, jittered by random 0.5).
    const capped = changed(driver.apply(driver.result('register', rejectedUnknown)));
    expect(capped.events[0]).toMatchObject({ data: { attempt: 13, delayMs: 54_000 } });
    expect(isHeldByConfigurationFault(driver.run('register'))).toBe(true);

    const done = changed(
      driver.apply(driver.result('register', completed({ 'biz.orgNumber': '556-1' }))),
    );
    expect(kinds(done.events)[0]).toBe('step-completed:register');
    expect(done.events[0]).toMatchObject({ data: { attempt: 13 } });
    expect(driver.run('register').state).toBe('completed');
    expect(isHeldByConfigurationFault(driver.run('register'))).toBe(false);
  });

  it('leaves the retry policy whole: once served, passing errors get every attempt it gives', () => {
    const driver = Driver.submitted();
    for (let i = 0; i < 3; i += 1) {
      changed(driver.apply(driver.result('register', unknownAction)));
    }
    expect(driver.run('register')).toMatchObject({ attempt: 4, maxAttempts: 6 });
    // The adapter can do the action now but is briefly unavailable: the policy's three attempts
    // are all still to come (4, 5 and 6), so only the third passing error fails the step.
    for (const attempt of [5, 6]) {
      const retried = changed(driver.apply(driver.result('register', retryable)));
      expect(kinds(retried.events)).toEqual([
        'step-retry-scheduled:register',
        'step-dispatched:register',
      ]);
      expect(driver.run('register')).toMatchObject({ state: 'ready', attempt });
    }
    const exhausted = changed(driver.apply(driver.result('register', retryable)));
    expect(kinds(exhausted.events)).toContain('step-attempts-exhausted:register');
    expect(driver.run('register')).toMatchObject({ state: 'failed' });
  });

  it('at the first attempt, is retried the same way, keeping the first deadline', () => {
    const driver = Driver.submitted();
    const deadline = driver.run('register').deadlineAt;
    const decision = changed(driver.apply(driver.result('register', rejectedUnknown), 100));
    expect(kinds(decision.events)).toEqual([
      'step-configuration-fault:register',
      'step-dispatched:register',
    ]);
    expect(decision.events[0]).toMatchObject({ data: { attempt: 2, delayMs: 900 } });
    expect(effects(decision, 'arm-timer')).toEqual([]);
    expect(driver.run('register')).toMatchObject({
      attempt: 2,
      lastError: 'unknown-action',
      deadlineAt: deadline,
    });
  });

  it('treats another code as usual: the last attempt exhausted, a rejection a refusal', () => {
    const driver = atLastAttempt();
    changed(driver.apply(driver.result('register', retryable)));
    expect(driver.run('register')).toMatchObject({ state: 'failed' });
    expect(isHeldByConfigurationFault(driver.run('register'))).toBe(false);

    const rejecting = Driver.submitted();
    const decision = changed(
      rejecting.apply(
        rejecting.result('register', { outcome: 'rejected', code: 'unknown-person', reason: 'x' }),
      ),
    );
    expect(kinds(decision.events)[0]).toBe('step-rejected:register');
    expect(rejecting.run('register')).toMatchObject({
      state: 'failed',
      lastError: 'unknown-person',
    });
  });

  it('isHeldByConfigurationFault: only an open step whose last error is a configuration fault', () => {
    expect(isHeldByConfigurationFault({ state: 'ready', lastError: 'unknown-action' })).toBe(true);
    expect(isHeldByConfigurationFault({ state: 'dispatched', lastError: 'unknown-action' })).toBe(
      true,
    );
    expect(isHeldByConfigurationFault({ state: 'ready', lastError: 'unavailable' })).toBe(false);
    // Once the agency holds the step, awaiting its decision, it is not held up on leo's side.
    expect(
      isHeldByConfigurationFault({ state: 'awaiting-decision', lastError: 'unknown-action' }),
    ).toBe(false);
    expect(isHeldByConfigurationFault({ state: 'ready', lastError: null })).toBe(false);
    for (const state of ['completed', 'failed', 'skipped', 'cancelled'] as const) {
      expect(isHeldByConfigurationFault({ state, lastError: 'unknown-action' })).toBe(false);
    }
  });
});

describe('decision', () => {
  function awaiting(): Driver {
    const driver = Driver.registered();
    const decision = changed(
      driver.apply(
        driver.result('tax', {
          outcome: 'pending',
          reference: 'T-1',
          expectedDecisionAt: '2025-04-01T00:00:00.000Z',
        }),
      ),
    );
    expect(decision.events).toEqual([
      {
        type: 'step-awaiting-decision',
        stepId: 'tax',
        data: { reference: 'T-1', expectedDecisionAt: '2025-04-01T00:00:00.000Z' },
      },
    ]);
    expect(driver.run('tax')).toMatchObject({
      state: 'awaiting-decision',
      agencyReference: 'T-1',
      expectedDecisionAt: new Date('2025-04-01T00:00:00.000Z'),
    });
    expect(effects(decision, 'notify').map((e) => e.message.template)).toEqual([
      'step-awaiting-decision',
    ]);
    return driver;
  }

  const decisionInput = (
    driver: Driver,
    decision: Extract<CaseInput, { type: 'decision' }>['decision'],
    agency = 'tax',
  ): CaseInput => ({ type: 'decision', agency, stepRunId: driver.run('tax').id, decision });

  it('completes a step awaiting a decision when its agency reports it over REST', () => {
    const driver = awaiting();
    const decision = changed(
      driver.apply(
        decisionInput(driver, { outcome: 'completed', produced: { 'biz.taxStatus': 'F' } }),
      ),
    );
    expect(kinds(decision.events)).toEqual([
      'decision-reported:tax',
      'step-completed:tax',
      'step-awaiting-citizen:sign',
    ]);
    expect(decision.events[0]).toMatchObject({ data: { outcome: 'completed', via: 'rest' } });
    expect(driver.record('biz.taxStatus')).toMatchObject({ source: 'agency', agency: 'tax' });
    expect(driver.run('tax')).toMatchObject({ state: 'completed', agencyReference: 'T-1' });
    expect(effects(decision, 'notify').map((e) => e.message.template)).toEqual([
      'step-granted',
      'task-waiting',
    ]);
  });

  it('takes a rejection over REST, failing the case of a fail-case step', () => {
    const driver = awaiting();
    const decision = changed(
      driver.apply(decisionInput(driver, { outcome: 'rejected', code: 'debts', reason: 'x' })),
    );
    expect(kinds(decision.events).slice(0, 3)).toEqual([
      'decision-reported:tax',
      'step-rejected:tax',
      'step-failed:tax',
    ]);
    expect(driver.status).toBe('failed');
  });

  it('refuses another agency’s decision as not found', () => {
    const driver = awaiting();
    const ok = { outcome: 'completed', produced: { 'biz.taxStatus': 'F' } } as const;
    expect(refused(driver.apply(decisionInput(driver, ok, 'register')))).toMatchObject({
      kind: 'not-found',
      code: 'step-not-found',
    });
    expect(
      refused(driver.apply({ type: 'decision', agency: 'tax', stepRunId: 'nope', decision: ok })),
    ).toMatchObject({ kind: 'not-found' });
    expect(driver.run('tax').state).toBe('awaiting-decision');
  });

  it('refuses a decision with facts the step may not set, changing nothing', () => {
    const driver = awaiting();
    const refusal = refused(
      driver.apply(
        decisionInput(driver, {
          outcome: 'completed',
          produced: { 'biz.taxStatus': 'X', 'biz.employerId': 'E' },
        }),
      ),
    );
    expect(refusal).toMatchObject({ kind: 'invalid', code: 'validation-failed' });
    expect(refusal.problems?.map((p) => [p.path, p.code])).toEqual([
      ['produced.biz.employerId', 'undeclared'],
      ['produced.biz.taxStatus', 'invalid-value'],
    ]);
    expect(driver.run('tax').state).toBe('awaiting-decision');
  });

  it('refuses a decision for a step not awaiting one (a duplicate decision)', () => {
    const driver = awaiting();
    const ok = decisionInput(driver, { outcome: 'completed', produced: { 'biz.taxStatus': 'F' } });
    changed(driver.apply(ok));
    expect(refused(driver.apply(ok))).toMatchObject({
      kind: 'conflict',
      code: 'not-awaiting-decision',
    });
    // A queue result repeating the decision changes nothing either.
    expect(driver.apply(driver.result('tax', completed({ 'biz.taxStatus': 'F' }))).outcome).toBe(
      'unchanged',
    );
  });
});

describe('task-completed', () => {
  function waitingForSignature(): Driver {
    const driver = Driver.registered({ ...ANSWERS, 'biz.employs': false });
    changed(driver.apply(driver.result('tax', completed({ 'biz.taxStatus': 'FA' }))));
    expect(driver.run('sign')).toMatchObject({
      state: 'awaiting-citizen',
      deadlineAt: new Date(T0.getTime() + 7 * DAY),
    });
    return driver;
  }

  it('completes the citizen’s task with the facts they give and completes the case', () => {
    const driver = waitingForSignature();
    const decision = changed(
      driver.apply({ type: 'task-completed', stepId: 'sign', produced: { 'biz.signed': true } }),
    );
    expect(decision.events).toEqual([
      { type: 'citizen-task-completed', stepId: 'sign', data: { producedKeys: ['biz.signed'] } },
      { type: 'case-completed' },
    ]);
    expect(driver.record('biz.signed')).toMatchObject({
      value: true,
      source: 'citizen',
      stepRunId: driver.run('sign').id,
    });
    expect(driver.status).toBe('completed');
  });

  it('refuses invalid facts, an unknown task, a step that is no task and a task not waiting', () => {
    const driver = waitingForSignature();
    expect(
      refused(
        driver.apply({ type: 'task-completed', stepId: 'sign', produced: { 'biz.signed': 'y' } }),
      ),
    ).toMatchObject({
      kind: 'invalid',
      problems: [expect.objectContaining({ path: 'facts.biz.signed' })],
    });
    expect(
      refused(driver.apply({ type: 'task-completed', stepId: 'tax', produced: {} })),
    ).toMatchObject({ kind: 'not-found', code: 'task-not-found' });
    expect(
      refused(driver.apply({ type: 'task-completed', stepId: 'nope', produced: {} })),
    ).toMatchObject({ kind: 'not-found' });
    const early = Driver.submitted();
    expect(
      refused(
        early.apply({ type: 'task-completed', stepId: 'sign', produced: { 'biz.signed': true } }),
      ),
    ).toMatchObject({ kind: 'conflict', code: 'task-not-waiting' });
  });
});

describe('timer-fired', () => {
  const timer = (driver: Driver, stepId: string): CaseInput => {
    const run = driver.run(stepId);
    return {
      type: 'timer-fired',
      stepRunId: run.id,
      deadline: must(run.deadlineAt ?? undefined, 'deadline').toISOString(),
    };
  };

  it('escalates an open step past its deadline once (step-overdue), tolerating an early timer', () => {
    const driver = Driver.submitted();
    const input = timer(driver, 'register');
    expect(driver.apply(input, HOUR - 2 * DEADLINE_TOLERANCE_MS)).toEqual({
      outcome: 'unchanged',
      reason: 'nothing to do',
    });
    const decision = changed(driver.apply(input, HOUR - DEADLINE_TOLERANCE_MS / 2));
    expect(decision.events).toEqual([
      {
        type: 'step-overdue',
        stepId: 'register',
        data: {
          deadline: new Date(T0.getTime() + HOUR).toISOString(),
          state: 'ready',
          agency: 'register',
        },
      },
    ]);
    expect(driver.run('register').overdue).toBe(true);
    expect(effects(decision, 'notify')[0]?.message).toMatchObject({
      template: 'step-overdue',
      params: expect.objectContaining({ waitingFor: 'agency' }),
    });
    expect(driver.apply(input, 2 * HOUR).outcome).toBe('unchanged');
    expect(driver.apply({ type: 'escalate-overdue' }, 2 * HOUR).outcome).toBe('unchanged');
  });

  it('does nothing for a timer of a deadline since moved, or of a finished step', () => {
    const driver = Driver.submitted();
    const old = timer(driver, 'register');
    for (let i = 0; i < 3; i++) changed(driver.apply(driver.result('register', retryable), 10));
    expect(driver.status).toBe('action-required');
    changed(driver.apply({ type: 'retry-step', stepId: 'register' }, 30 * 60_000));
    expect(driver.run('register').deadlineAt).toEqual(new Date(T0.getTime() + 30 * 60_000 + HOUR));
    expect(driver.apply(old, 2 * HOUR)).toEqual({ outcome: 'unchanged', reason: 'deadline moved' });

    const fresh = timer(driver, 'register');
    changed(driver.apply(driver.result('register', completed({ 'biz.orgNumber': '1' }))));
    expect(driver.apply(fresh, 3 * HOUR).outcome).toBe('unchanged');
  });

  it('escalate-overdue marks every open step past its deadline and tells the citizen of a task', () => {
    const driver = Driver.registered({ ...ANSWERS, 'biz.employs': false });
    changed(driver.apply(driver.result('tax', completed({ 'biz.taxStatus': 'F' }))));
    const decision = changed(driver.apply({ type: 'escalate-overdue' }, 8 * DAY));
    expect(kinds(decision.events)).toEqual(['step-overdue:sign']);
    expect(effects(decision, 'notify')[0]?.message.params).toMatchObject({ waitingFor: 'citizen' });
  });
});

describe('cancel', () => {
  it('cancels every unfinished step, telling each agency with one in flight, but not the citizen’s words', () => {
    const driver = Driver.registered();
    const tax = driver.run('tax');
    const employer = driver.run('employer');
    const decision = changed(
      driver.apply({ type: 'cancel', reason: 'changed my mind', by: 'citizen' }),
    );
    expect(decision.events).toEqual([
      { type: 'step-cancelled', stepId: 'tax', data: { inFlight: true } },
      { type: 'step-cancelled', stepId: 'employer', data: { inFlight: true } },
      { type: 'step-cancelled', stepId: 'sign', data: { inFlight: false } },
      { type: 'case-cancelled', data: { reason: 'changed my mind', by: 'citizen' } },
    ]);
    expect(effects(decision, 'cancel-step').map((e) => [e.agency, e.jobId, e.job])).toEqual(
      [tax, employer].map((run) => [
        'tax',
        `${run.id}.cancel`,
        {
          caseId: 'case-1',
          stepRunId: run.id,
          action: run.action,
          idempotencyKey: run.id,
          // The citizen's free text stays in leo: an agency is told only who cancelled.
          reason: 'cancelled by the applicant',
        },
      ]),
    );
    expect(driver.run('register').state).toBe('completed');
    expect(driver.state.caseRecord).toMatchObject({ status: 'cancelled', finishedAt: T0 });
    expect(effects(decision, 'notify').map((e) => e.message.template)).toEqual(['case-cancelled']);
  });

  it('counts a step awaiting a decision as in flight, and a case not yet submitted has none', () => {
    const driver = Driver.registered({ ...ANSWERS, 'biz.employs': false });
    changed(driver.apply(driver.result('tax', { outcome: 'pending', reference: 'T' })));
    const decision = changed(driver.apply({ type: 'cancel', reason: 'r', by: 'admin' }));
    expect(effects(decision, 'cancel-step').map((e) => e.job.reason)).toEqual([
      'cancelled by an administrator',
    ]);
    expect(effects(decision, 'cancel-step').map((e) => e.job.stepRunId)).toEqual([
      driver.run('tax').id,
    ]);

    const open = new Driver();
    changed(open.open(ANSWERS));
    const early = changed(open.apply({ type: 'cancel', reason: 'r', by: 'citizen' }));
    expect(effects(early, 'cancel-step')).toEqual([]);
    expect(open.state.runs.every((r) => r.state === 'cancelled')).toBe(true);
  });

  it('refuses to cancel a finished case', () => {
    const driver = Driver.submitted();
    changed(driver.apply({ type: 'cancel', reason: 'r', by: 'admin' }));
    expect(refused(driver.apply({ type: 'cancel', reason: 'again', by: 'admin' }))).toMatchObject({
      kind: 'conflict',
      code: 'case-finished',
    });
  });
});

describe('retry-step', () => {
  it('dispatches a failed step again after action-required, with fresh attempts and deadline', () => {
    const driver = Driver.submitted();
    for (let i = 0; i < 3; i++) changed(driver.apply(driver.result('register', retryable)));
    const run = driver.run('register');
    expect(run).toMatchObject({ state: 'failed', attempt: 3, maxAttempts: 3 });

    const decision = changed(
      driver.apply({ type: 'retry-step', stepId: 'register', actor: 'admin-eva' }, DAY),
    );
    expect(kinds(decision.events)).toEqual([
      'step-retried-by-admin:register',
      'step-dispatched:register',
    ]);
    expect(decision.events[0]?.data).toEqual({ actor: 'admin-eva' });
    expect(driver.status).toBe('running');
    expect(driver.run('register')).toMatchObject({
      state: 'ready',
      attempt: 4,
      maxAttempts: 6,
      deadlineAt: new Date(T0.getTime() + DAY + HOUR),
      overdue: false,
    });
    const [dispatched] = effects(decision, 'dispatch-step');
    expect(dispatched).toMatchObject({
      jobId: `${run.id}.4`,
      availableAt: new Date(T0.getTime() + DAY),
    });
    expect(effects(decision, 'arm-timer')).toHaveLength(1);
    expect(effects(decision, 'disclose')[0]?.disclosure.factRecordIds).toEqual(
      run.disclosedFactIds,
    );
    // The old attempts' answers are stale now; the new one carries the case on.
    expect(driver.apply(driver.result('register', retryable, 3)).outcome).toBe('unchanged');
    const next = changed(
      driver.apply(driver.result('register', completed({ 'biz.orgNumber': '556-1' }))),
    );
    expect(kinds(next.events)).toContain('step-dispatched:tax');
  });

  it('refuses a step that has not failed, and a step the case does not have', () => {
    const driver = Driver.submitted();
    expect(refused(driver.apply({ type: 'retry-step', stepId: 'register' }))).toMatchObject({
      kind: 'conflict',
      code: 'step-not-retryable',
    });
    expect(refused(driver.apply({ type: 'retry-step', stepId: 'nope' }))).toMatchObject({
      kind: 'not-found',
    });
  });
});

/**
 * Bugs found by libs/case-machine/src/properties.spec.ts (both older than the case machine), kept
 * as the tests that failed before their fixes.
 */
describe('found by the properties', () => {
  /**
   * retry-step set the case running although another step was still failed: that step could no
   * longer be retried (`step-not-retryable`: the case was not action-required), and once the rest
   * was done the case never completed (advance completes only without failed steps): it stayed
   * `running` with nothing in flight, for good.
   */
  it('retrying one of two failed steps keeps the other retryable, and the case completes', () => {
    const bothRequireAction = withDefaults({
      ...SOURCE,
      steps: SOURCE.steps.map((s) => (s.id === 'tax' ? { ...s, onFailure: 'action-required' } : s)),
    });
    const driver = Driver.submitted(ANSWERS, {
      definition: bothRequireAction,
      published: [bothRequireAction],
    });
    changed(driver.apply(driver.result('register', completed({ 'biz.orgNumber': '556-1' }))));
    const no: StepOutcome = { outcome: 'rejected', code: 'no', reason: 'no' };
    changed(driver.apply(driver.result('employer', no)));
    changed(driver.apply(driver.result('tax', no)));
    expect(driver.status).toBe('action-required');

    changed(driver.apply({ type: 'retry-step', stepId: 'employer' }));
    changed(driver.apply(driver.result('employer', completed({ 'biz.employerId': 'E-1' }))));
    // Before the fix: the case was `running`, tax `failed`, sign `pending`, nothing in flight,
    // and this was refused with step-not-retryable.
    expect(driver.status).toBe('action-required');
    changed(driver.apply({ type: 'retry-step', stepId: 'tax' }));
    changed(driver.apply(driver.result('tax', completed({ 'biz.taxStatus': 'F' }))));
    changed(
      driver.apply({ type: 'task-completed', stepId: 'sign', produced: { 'biz.signed': true } }),
    );
    expect(driver.status).toBe('completed');
  });

  /**
   * A look-up answer was applied whatever the case's status (step results are not: `case is
   * cancelled`). A case cancelled while its look-up was pending took the answer: a retryable
   * error requested the look-up again, disclosing the personal number to the agency once more for
   * a cancelled case (up to LOOKUP_ATTEMPTS times), and every answer added events (and found
   * facts) to the cancelled case's history, moving its revision on.
   */
  it('a look-up answer for a cancelled case changes nothing (retryable error)', () => {
    const driver = new Driver();
    changed(driver.open(ANSWERS));
    changed(driver.apply({ type: 'cancel', reason: 'r', by: 'citizen' }));
    const decision = driver.apply(
      driver.lookupResult({ outcome: 'retryable-error', code: 'down', reason: 'down' }),
    );
    // Before the fix: changed, with lookup-requested (attempt 2), a request-lookup and a disclose.
    expect(decision).toMatchObject({ outcome: 'unchanged' });
  });

  it('a look-up answer for a cancelled case changes nothing (found)', () => {
    const driver = new Driver();
    changed(driver.open(ANSWERS));
    changed(driver.apply({ type: 'cancel', reason: 'r', by: 'citizen' }));
    const decision = driver.apply(
      driver.lookupResult({ outcome: 'found', facts: { 'person.name': 'Ada' } }),
    );
    // Before the fix: changed, with lookup-answered and a fact record, on the cancelled case.
    expect(decision).toMatchObject({ outcome: 'unchanged' });
  });

  /**
   * Found in review: with answers to a closed case ignored, a look-up left pending would be
   * re-sent by the reconciler (which claims every pending look-up) on every round, disclosing the
   * personal number again each time. A cancel closes it.
   */
  it('a cancel closes the look-ups still pending, so nothing asks the register again', () => {
    const driver = new Driver();
    changed(driver.open(ANSWERS));
    expect(driver.state.lookups.map((l) => l.state)).toEqual(['pending']);
    const decision = changed(driver.apply({ type: 'cancel', reason: 'r', by: 'citizen' }));
    expect(decision.writes.changedLookups).toEqual([
      expect.objectContaining({ state: 'failed', lastError: 'case-closed' }),
    ]);
    expect(driver.state.lookups.map((l) => l.state)).toEqual(['failed']);
  });
});

describe('every decision', () => {
  it('leaves the state it was given untouched, even unfrozen', () => {
    const driver = Driver.registered();
    const state = driver.state;
    const copy = structuredClone(state);
    const input = driver.result('tax', completed({ 'biz.taxStatus': 'F' }));
    const first = changed(decide(state, input, makeEnv()));
    expect(state).toEqual(copy);
    expect(first.state).not.toBe(state);
    // The same state, input and environment give the same decision.
    expect(decide(state, input, makeEnv())).toEqual(first);
  });
});
