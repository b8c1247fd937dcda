import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { EngineRepository } from '../src/engine/engine.repository.js';
import { EngineService } from '../src/engine/engine.service.js';
import {
  WORKLOAD_ANSWERS,
  openResolvedCase,
  sql,
  submitWithConsent,
  waitForCase,
} from './support/engine-harness.js';
import { startTestApp, type TestApp } from './support/test-env.js';

/**
 * The standard workload (shared/bench/WORKLOAD.md) end to end with leo's own mock agencies in
 * one process (role `all`), answering at once as in the benchmark: every step executed exactly
 * once, each agency receiving exactly what its step needs, every sharing in the disclosure log.
 */
describe('start a business on the mock agencies', () => {
  let leo: TestApp;
  beforeAll(async () => {
    leo = await startTestApp({
      LEO_ROLE: 'all',
      MOCK_DECISION_DELAY_MS: '0',
      MOCK_AGENCY_FAILURE_RATE: '0',
      MOCK_REJECTION_RATE: '0',
    });
  });
  afterAll(async () => {
    await leo.close();
  });

  it('completes 20 cases, each step effect made exactly once, minimised and disclosed', async () => {
    const engine = leo.app.get(EngineService);
    const repository = leo.app.get(EngineRepository);
    const cases: string[] = [];
    for (let i = 0; i < 20; i += 1) {
      const { caseId } = await openResolvedCase(engine, repository, {
        answers: { ...WORKLOAD_ANSWERS, 'business.name': `Företag ${String(i)}` },
      });
      cases.push(caseId);
    }
    await Promise.all(cases.map((id) => submitWithConsent(engine, id)));
    for (const id of cases) await waitForCase(leo.database, id, ['completed'], 30_000);

    const effects = await sql<{ agency: string; action: string; n: string }>(
      leo.database,
      `SELECT e.agency, e.action, count(*) AS n FROM mock_agency_effects e
       JOIN step_runs s ON s.id = e.step_run_id WHERE s.case_id = ANY($1::uuid[])
       GROUP BY e.agency, e.action ORDER BY e.agency, e.action`,
      [cases],
    );
    // The notice went to the citizen's own municipality (decision 0024), looked up once.
    const [home] = await sql<{ code: string }>(
      leo.database,
      `SELECT DISTINCT value #>> '{}' AS code FROM fact_records
       WHERE fact_key = 'person.municipalityCode' AND case_id = ANY($1::uuid[])`,
      [cases],
    );
    expect(effects).toEqual([
      { agency: 'bolagsverket', action: 'register-sole-trader', n: '20' },
      { agency: `kommun-${home?.code ?? '?'}`, action: 'notify-new-business', n: '20' },
      { agency: 'skatteverket', action: 'register-employer', n: '20' },
      { agency: 'skatteverket', action: 'register-f-tax', n: '20' },
      { agency: 'skatteverket', action: 'register-vat', n: '20' },
    ]);

    // What each agency received is exactly what its step needs, and matches one disclosure.
    const requests = await sql<{ step_run_id: string; keys: string[]; disclosed: string[] }>(
      leo.database,
      `SELECT r.step_run_id, ARRAY(SELECT jsonb_object_keys(r.facts) ORDER BY 1) AS keys,
              ARRAY(SELECT unnest(d.fact_keys) ORDER BY 1) AS disclosed
       FROM mock_agency_requests r JOIN disclosures d ON d.step_run_id = r.step_run_id
       JOIN step_runs s ON s.id = r.step_run_id WHERE s.case_id = ANY($1::uuid[])`,
      [cases],
    );
    expect(requests).toHaveLength(100);
    for (const r of requests) expect(r.keys).toEqual(r.disclosed);

    const vat = await sql<{ value: string; org: string }>(
      leo.database,
      `SELECT v.value #>> '{}' AS value, o.value #>> '{}' AS org FROM fact_records v
       JOIN fact_records o ON o.case_id = v.case_id AND o.fact_key = 'business.orgNumber'
       WHERE v.fact_key = 'business.vatNumber' AND v.case_id = $1`,
      [cases[0]],
    );
    expect(vat[0]?.value).toBe(`SE${(vat[0]?.org ?? '').replace(/\D/g, '').slice(-10)}01`);
  });
});
