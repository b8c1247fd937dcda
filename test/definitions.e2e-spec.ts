import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import request from 'supertest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import {
  CatalogueSeedService,
  DEFAULT_SEED_DIR,
} from '../src/definitions/catalogue-seed.service.js';
import { EngineRepository } from '../src/engine/engine.repository.js';
import { EngineService } from '../src/engine/engine.service.js';
import { sql as query, startTestApp, type TestApp } from './support/test-env.js';

const SEEDED = ['become-parent', 'death-of-relative', 'move-house', 'start-business'];

/** A small life event over seeded facts and agencies: register a sole trader, then F-tax. */
function errand(key: string): Record<string, unknown> {
  return {
    key,
    version: 1,
    title: { sv: 'Testärende', en: 'Test errand' },
    description: { sv: 'Ett ärende för tester.', en: 'An errand for tests.' },
    inputs: [
      'person.name',
      'person.personalNumber',
      'business.name',
      'business.legalForm',
      'business.sniCode',
      'business.expectedTurnover',
    ],
    steps: [
      {
        id: 'register',
        agency: 'bolagsverket',
        action: 'register-sole-trader',
        kind: 'automatic',
        needs: [
          'person.name',
          'person.personalNumber',
          'business.name',
          'business.legalForm',
          'business.sniCode',
        ],
        produces: ['business.orgNumber'],
      },
      {
        id: 'f-tax',
        agency: 'skatteverket',
        action: 'register-f-tax',
        kind: 'decision',
        needs: ['business.orgNumber', 'business.expectedTurnover'],
        produces: ['business.fTaxStatus'],
        deadline: 'P6W',
      },
    ],
  };
}

describe('life-event definitions and the catalogue', () => {
  let leo: TestApp;
  let admin: string;
  let citizen: string;
  let agency: string;
  const server = (): Parameters<typeof request>[0] =>
    leo.app.getHttpServer() as Parameters<typeof request>[0];
  const asAdmin = {
    get: (url: string) => request(server()).get(url).set('Authorization', `Bearer ${admin}`),
    post: (url: string) => request(server()).post(url).set('Authorization', `Bearer ${admin}`),
    put: (url: string) => request(server()).put(url).set('Authorization', `Bearer ${admin}`),
    delete: (url: string) => request(server()).delete(url).set('Authorization', `Bearer ${admin}`),
  };
  const token = async (body: Record<string, string>): Promise<string> =>
    (
      (await request(server()).post('/v1/dev/token').send(body).expect(200)).body as {
        accessToken: string;
      }
    ).accessToken;

  const sql = <T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> =>
    query<T>(leo.database, text, values);

  beforeAll(async () => {
    leo = await startTestApp();
    admin = await token({ role: 'admin', subject: 'admin-anna' });
    citizen = await token({ role: 'citizen', personalNumber: '199012119948' });
    agency = await token({ role: 'agency', agency: 'skatteverket' });
  });
  afterAll(async () => {
    await leo.close();
  });

  it('publishes every seeded life event at start, and the catalogue with them', async () => {
    const list = await asAdmin.get('/v1/admin/life-events').expect(200);
    const keys = (list.body as Array<{ key: string; currentVersion: number | null }>).map(
      (l) => l.key,
    );
    expect(keys).toEqual(expect.arrayContaining(SEEDED));
    for (const summary of list.body as Array<{
      key: string;
      currentVersion: number | null;
      versions: Array<{ checksum: string }>;
    }>) {
      if (!SEEDED.includes(summary.key)) continue;
      expect(summary.currentVersion).toBe(1);
      expect(summary.versions[0]?.checksum).toMatch(/^sha256:[0-9a-f]{64}$/);
    }
    const facts = await asAdmin.get('/v1/admin/fact-types').expect(200);
    expect((facts.body as Array<{ entry: { key: string } }>).map((f) => f.entry.key)).toEqual(
      expect.arrayContaining(['person.personalNumber', 'business.orgNumber']),
    );
    const agencies = await asAdmin.get('/v1/admin/agencies').expect(200);
    expect((agencies.body as Array<{ entry: { code: string } }>).map((a) => a.entry.code)).toEqual(
      expect.arrayContaining([
        'bolagsverket',
        'skatteverket',
        'forsakringskassan',
        'kommun',
        'arbetsformedlingen',
        'pensionsmyndigheten',
        'transportstyrelsen',
      ]),
    );
  });

  it('seeds idempotently: the same files add nothing', async () => {
    const before = await sql<{ n: string }>('SELECT count(*) AS n FROM life_event_definitions');
    const report = await leo.app.get(CatalogueSeedService).seed(DEFAULT_SEED_DIR);
    expect(report.lifeEvents.published).toEqual([]);
    expect([...report.lifeEvents.unchanged].sort()).toEqual(expect.arrayContaining(SEEDED));
    expect(report.factTypes.added).toEqual([]);
    expect(report.factTypes.updated).toEqual([]);
    const after = await sql<{ n: string }>('SELECT count(*) AS n FROM life_event_definitions');
    expect(after).toEqual(before);
  });

  it('publishes a changed seed file as a new version and keeps the old one', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'leo-seed-'));
    try {
      await cp(DEFAULT_SEED_DIR, dir, { recursive: true });
      const file = path.join(dir, 'life-events', 'move-house.yaml');
      const definition = parseYaml(await readFile(file, 'utf8')) as { description: { en: string } };
      definition.description.en = `${definition.description.en} (revised)`;
      await writeFile(file, toYaml(definition));
      const report = await leo.app.get(CatalogueSeedService).seed(dir);
      expect(report.lifeEvents.published).toEqual(['move-house@2']);
      const versions = await asAdmin.get('/v1/admin/life-events/move-house/versions').expect(200);
      const rows = versions.body as Array<{ version: number; status: string; checksum: string }>;
      expect(rows.map((r) => [r.version, r.status])).toEqual([
        [2, 'published'],
        [1, 'published'],
      ]);
      expect(rows[0]?.checksum).not.toBe(rows[1]?.checksum);
      const v1 = await asAdmin.get('/v1/admin/life-events/move-house/versions/1').expect(200);
      expect(
        (v1.body as { definition: { description: { en: string } } }).definition.description.en,
      ).not.toContain('(revised)');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('takes a draft through validation to an immutable published version', async () => {
    const created = await asAdmin
      .post('/v1/admin/life-events')
      .send(errand('test-errand'))
      .expect(201);
    expect(created.body).toMatchObject({
      key: 'test-errand',
      version: 1,
      status: 'draft',
      checksum: null,
      createdBy: 'admin-anna',
    });
    expect(
      (created.body as { diagnostics: Array<{ severity: string }> }).diagnostics.filter(
        (d) => d.severity === 'error',
      ),
    ).toEqual([]);

    // A second draft for the same life event is refused: edit the open one.
    await asAdmin.post('/v1/admin/life-events').send(errand('test-errand')).expect(409);

    const edited = { ...errand('test-errand'), title: { sv: 'Nytt namn', en: 'New name' } };
    await asAdmin.put('/v1/admin/life-events/test-errand/draft').send(edited).expect(200);
    const published = await asAdmin
      .post('/v1/admin/life-events/test-errand/draft/publish')
      .expect(200);
    expect(published.body).toMatchObject({
      key: 'test-errand',
      version: 1,
      status: 'published',
      publishedBy: 'admin-anna',
    });
    const body = published.body as {
      checksum: string;
      definition: { title: { en: string }; steps: Array<{ retry?: unknown; onFailure?: string }> };
    };
    expect(body.checksum).toMatch(/^sha256:/);
    expect(body.definition.title.en).toBe('New name');
    // Defaults are made explicit at publication, so the version never depends on code defaults.
    expect(body.definition.steps[0]?.retry).toBeDefined();
    expect(body.definition.steps[0]?.onFailure).toBe('action-required');

    await asAdmin.get('/v1/admin/life-events/test-errand/draft').expect(404);
    await expect(
      sql(
        "UPDATE life_event_definitions SET body = jsonb_set(body, '{title,en}', '\"tampered\"') WHERE key = 'test-errand'",
      ),
    ).rejects.toThrow(/immutable/);
    await expect(
      sql("DELETE FROM life_event_definitions WHERE key = 'test-errand'"),
    ).rejects.toThrow(/cannot be deleted/);

    // The next draft is version 2; version 1 stays as it was.
    const next = await asAdmin
      .post('/v1/admin/life-events')
      .send(errand('test-errand'))
      .expect(201);
    expect(next.body).toMatchObject({ version: 2, status: 'draft' });
    await asAdmin.delete('/v1/admin/life-events/test-errand/draft').expect(204);
    const v1 = await asAdmin.get('/v1/admin/life-events/test-errand/versions/1').expect(200);
    expect((v1.body as { checksum: string }).checksum).toBe(body.checksum);

    const deprecated = await asAdmin
      .post('/v1/admin/life-events/test-errand/versions/1/deprecate')
      .expect(200);
    expect(deprecated.body).toMatchObject({
      status: 'deprecated',
      deprecatedBy: 'admin-anna',
      checksum: body.checksum,
    });
  });

  it('accepts a draft authored in YAML', async () => {
    const response = await asAdmin
      .post('/v1/admin/life-events')
      .set('Content-Type', 'application/yaml')
      .send(toYaml(errand('yaml-errand')))
      .expect(201);
    expect(response.body).toMatchObject({ key: 'yaml-errand', status: 'draft' });
  });

  it('refuses to publish a broken draft, listing every error, and changes nothing', async () => {
    const broken = errand('broken-errand');
    const steps = broken.steps as Array<Record<string, unknown>>;
    steps[0] = { ...steps[0], agency: 'no-such-agency' };
    steps[1] = {
      ...steps[1],
      needs: ['business.orgNumber', 'business.unheardOf'],
      after: ['nowhere'],
    };
    const created = await asAdmin.post('/v1/admin/life-events').send(broken).expect(201);
    const codes = (
      created.body as { diagnostics: Array<{ code: string; path: string }> }
    ).diagnostics.map((d) => `${d.path} ${d.code}`);
    expect(codes).toEqual(
      expect.arrayContaining([
        '/steps/0/agency unknown-agency',
        '/steps/1/needs/1 unknown-fact',
        '/steps/1/after/0 unknown-step',
      ]),
    );
    const refused = await asAdmin
      .post('/v1/admin/life-events/broken-errand/draft/publish')
      .expect(422);
    expect(refused.body.code).toBe('definition-invalid');
    expect(
      (refused.body.errors as Array<{ path: string; code: string }>).map(
        (e) => `${e.path} ${e.code}`,
      ),
    ).toEqual(
      expect.arrayContaining(['/steps/0/agency unknown-agency', '/steps/1/needs/1 unknown-fact']),
    );
    const rows = await sql<{ status: string }>(
      "SELECT status FROM life_event_definitions WHERE key = 'broken-errand'",
    );
    expect(rows).toEqual([{ status: 'draft' }]);
  });

  it('validates without saving', async () => {
    const ok = await asAdmin
      .post('/v1/admin/life-events/validate')
      .send(errand('unsaved'))
      .expect(200);
    expect(ok.body.valid).toBe(true);
    const bad = await asAdmin
      .post('/v1/admin/life-events/validate')
      .send({ ...errand('unsaved'), steps: 'none' })
      .expect(200);
    expect(bad.body.valid).toBe(false);
    expect(bad.body.diagnostics).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: '/steps', code: 'invalid-shape', severity: 'error' }),
      ]),
    );
    await asAdmin.get('/v1/admin/life-events/unsaved/versions').expect(404);
  });

  it('draws a published version as a Mermaid flowchart', async () => {
    const response = await asAdmin
      .get('/v1/admin/life-events/start-business/versions/1/diagram')
      .expect(200);
    expect(response.headers['content-type']).toContain('text/vnd.mermaid');
    expect(response.text).toMatch(/^flowchart/m);
    expect(response.text).toContain('subgraph');
  });

  it.each([
    ['a body that is not an object', '[1, 2]', 'application/json', ''],
    ['a missing key', JSON.stringify({ title: 'x' }), 'application/json', '/key'],
    ['a malformed key', JSON.stringify({ key: 'Not A Key' }), 'application/json', '/key'],
    ['YAML that does not parse', 'key: [unclosed', 'application/yaml', ''],
  ])('answers %s with 400 and changes nothing', async (_what, body, type, pathOfError) => {
    const before = await sql<{ n: string }>('SELECT count(*) AS n FROM life_event_definitions');
    const response = await asAdmin
      .post('/v1/admin/life-events')
      .set('Content-Type', type)
      .send(body)
      .expect(400);
    expect((response.body.errors as Array<{ path: string }>)[0]?.path).toBe(pathOfError);
    expect(await sql('SELECT count(*) AS n FROM life_event_definitions')).toEqual(before);
  });

  it('answers a bad version number with 400 naming it, and an unknown one with 404', async () => {
    const bad = await asAdmin.get('/v1/admin/life-events/start-business/versions/abc').expect(400);
    expect(bad.body.errors[0].path).toBe('version');
    await asAdmin.get('/v1/admin/life-events/start-business/versions/99').expect(404);
  });

  it('refuses a catalogue edit that would break a published life event, and keeps a harmless one with its history', async () => {
    const current = await asAdmin.get('/v1/admin/agencies/bolagsverket').expect(200);
    const entry = current.body.entry as {
      code: string;
      actions: Array<{ name: string; produces: string[] }>;
    };
    // Dropping an action that start-business uses would strand its published version.
    const withoutProduce = {
      ...entry,
      actions: entry.actions.filter((a) => a.name !== 'register-limited-company'),
    };
    const before = current.body.revision as number;
    const refused = await asAdmin
      .put('/v1/admin/agencies/bolagsverket')
      .send(withoutProduce)
      .expect(409);
    expect(refused.body.code).toBe('breaks-published-definitions');
    expect(
      (refused.body.errors as Array<{ path: string }>).some((e) =>
        e.path.startsWith('start-business@1/steps/'),
      ),
    ).toBe(true);
    expect((await asAdmin.get('/v1/admin/agencies/bolagsverket').expect(200)).body.revision).toBe(
      before,
    );

    const fact = (await asAdmin.get('/v1/admin/fact-types/business.name').expect(200)).body as {
      entry: Record<string, unknown>;
      revision: number;
    };
    const relabelled = {
      ...fact.entry,
      label: { sv: 'Företagsnamn', en: 'Business name (registered)' },
    };
    const saved = await asAdmin
      .put('/v1/admin/fact-types/business.name')
      .send(relabelled)
      .expect(200);
    expect(saved.body).toMatchObject({
      revision: fact.revision + 1,
      origin: 'admin',
      updatedBy: 'admin-anna',
    });
    const history = await asAdmin.get('/v1/admin/fact-types/business.name/revisions').expect(200);
    expect((history.body as unknown[]).length).toBe(fact.revision + 1);
    // A later start with the same seed leaves the administrator's edit alone, silently.
    const unchanged = await leo.app.get(CatalogueSeedService).seed(DEFAULT_SEED_DIR);
    expect(unchanged.factTypes).toEqual({ added: [], updated: [], keptAdminEdits: [] });
    // When the seed of that entry changes, the edit still wins, and the report says so.
    const dir = await mkdtemp(path.join(tmpdir(), 'leo-seed-'));
    try {
      await cp(DEFAULT_SEED_DIR, dir, { recursive: true });
      const facts = parseYaml(await readFile(path.join(dir, 'facts.yaml'), 'utf8')) as Array<{
        key: string;
        label: { en: string };
      }>;
      const seeded = facts.find((f) => f.key === 'business.name');
      if (seeded) seeded.label.en = 'Name of the business (seed v2)';
      await writeFile(path.join(dir, 'facts.yaml'), toYaml(facts));
      const changed = await leo.app.get(CatalogueSeedService).seed(dir);
      expect(changed.factTypes.keptAdminEdits).toEqual(['business.name']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const still = await asAdmin.get('/v1/admin/fact-types/business.name').expect(200);
    expect(still.body.entry.label.en).toBe('Business name (registered)');
  });

  it('refuses a malformed catalogue entry with 400 naming the field', async () => {
    const response = await asAdmin
      .put('/v1/admin/fact-types/test.thing')
      .send({
        key: 'test.thing',
        schema: { type: 'string' },
        label: { sv: 'Sak' },
        sensitivity: 'secret',
        source: 'citizen',
      })
      .expect(400);
    const paths = (response.body.errors as Array<{ path: string }>).map((e) => e.path);
    expect(paths.some((p) => p.includes('label'))).toBe(true);
    expect(paths.some((p) => p.includes('sensitivity'))).toBe(true);
    await asAdmin.get('/v1/admin/fact-types/test.thing').expect(404);
  });

  it('answers malformed path parameters and unstorable documents with 400, never 500', async () => {
    for (const url of [
      '/v1/admin/life-events/start-business/versions/99999999999',
      '/v1/admin/life-events/start-business/versions/0',
      '/v1/admin/life-events/start-business/versions/-1',
      '/v1/admin/life-events/bad%00key/versions',
      '/v1/admin/fact-types/not%00a.key',
      '/v1/admin/agencies/X',
    ]) {
      const response = await asAdmin.get(url);
      expect({ url, status: response.status }).toEqual({ url, status: 400 });
    }
    const nul = await asAdmin
      .post('/v1/admin/life-events')
      .send({ ...errand('nul-errand'), title: { sv: 'a\u0000b', en: 'x' } });
    expect(nul.status).toBe(400);
    let deep: unknown = 'leaf';
    for (let i = 0; i < 5_000; i += 1) deep = [deep];
    const tooDeep = await asAdmin
      .post('/v1/admin/life-events')
      .send({ ...errand('deep-errand'), when: deep });
    expect(tooDeep.status).toBe(400);
    expect(
      await sql("SELECT 1 FROM life_event_definitions WHERE key IN ('nul-errand', 'deep-errand')"),
    ).toEqual([]);
  });

  it('deprecates once under concurrency, and discarding a missing draft is a 404', async () => {
    await asAdmin.post('/v1/admin/life-events').send(errand('race-errand')).expect(201);
    await asAdmin.post('/v1/admin/life-events/race-errand/draft/publish').expect(200);
    const responses = await Promise.all(
      Array.from({ length: 6 }, () =>
        asAdmin.post('/v1/admin/life-events/race-errand/versions/1/deprecate'),
      ),
    );
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    const [row] = await sql<{ status: string }>(
      "SELECT status FROM life_event_definitions WHERE key = 'race-errand'",
    );
    expect(row?.status).toBe('deprecated');
    await asAdmin.delete('/v1/admin/life-events/race-errand/draft').expect(404);
  });

  it('protects a deprecated version that cases still run on from catalogue edits', async () => {
    await asAdmin.post('/v1/admin/life-events').send(errand('inuse-errand')).expect(201);
    await asAdmin.post('/v1/admin/life-events/inuse-errand/draft/publish').expect(200);
    await leo.app.get(EngineService).openCase({
      subjectId: await leo.app.get(EngineRepository).createSubject(),
      lifeEventKey: 'inuse-errand',
      personalNumber: '199012119948',
      answers: { 'business.name': 'Testbolaget' },
    });
    await asAdmin.post('/v1/admin/life-events/inuse-errand/versions/1/deprecate').expect(200);
    const current = await asAdmin.get('/v1/admin/agencies/skatteverket').expect(200);
    // Moving the F-tax status from the F-tax action to another leaves the catalogue consistent but
    // strands every version whose F-tax step produces it.
    const entry = current.body.entry as { actions: Array<{ name: string; produces: string[] }> };
    const moved = {
      ...entry,
      actions: entry.actions.map((a) =>
        a.name === 'register-f-tax'
          ? { ...a, produces: a.produces.filter((p) => p !== 'business.fTaxStatus') }
          : a.name === 'register-vat'
            ? { ...a, produces: [...a.produces, 'business.fTaxStatus'] }
            : a,
      ),
    };
    const refused = await asAdmin.put('/v1/admin/agencies/skatteverket').send(moved).expect(409);
    expect(
      (refused.body.errors as Array<{ path: string }>).some((e) =>
        e.path.startsWith('inuse-errand@1/'),
      ),
    ).toBe(true);
  });

  it('never rolls a catalogue entry back to an older seed (a rolling deployment restarting an old image)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'leo-seed-'));
    try {
      await cp(DEFAULT_SEED_DIR, dir, { recursive: true });
      const file = path.join(dir, 'agencies.yaml');
      const agencies = parseYaml(await readFile(file, 'utf8')) as Array<{
        code: string;
        name: { en: string };
      }>;
      const tv = agencies.find((a) => a.code === 'transportstyrelsen');
      if (tv) tv.name.en = 'Swedish Transport Agency (new image)';
      await writeFile(file, toYaml(agencies));
      const forward = await leo.app.get(CatalogueSeedService).seed(dir);
      expect(forward.agencies.updated).toEqual(['transportstyrelsen']);
      const back = await leo.app.get(CatalogueSeedService).seed(DEFAULT_SEED_DIR);
      expect(back.agencies.updated).toEqual([]);
      const still = await asAdmin.get('/v1/admin/agencies/transportstyrelsen').expect(200);
      expect(still.body.entry.name.en).toBe('Swedish Transport Agency (new image)');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('lets only administrators near any of it', async () => {
    for (const caller of [citizen, agency]) {
      await request(server())
        .get('/v1/admin/life-events')
        .set('Authorization', `Bearer ${caller}`)
        .expect(403);
      await request(server())
        .post('/v1/admin/life-events')
        .set('Authorization', `Bearer ${caller}`)
        .send(errand('sneaky'))
        .expect(403);
      await request(server())
        .put('/v1/admin/fact-types/business.name')
        .set('Authorization', `Bearer ${caller}`)
        .send({})
        .expect(403);
    }
    await request(server()).get('/v1/admin/agencies').expect(401);
    expect(await sql("SELECT 1 FROM life_event_definitions WHERE key = 'sneaky'")).toEqual([]);
  });
});
