import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';

/** The authoring CLI, run as `npm run leo -- …` runs it (the built dist/src/cli/leo.js). */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist/src/cli/leo.js');

function leo(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [cli, ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '' },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('npm run leo', () => {
  let scratch: string;
  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'leo-cli-'));
  });
  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('validates every seeded life event silently, exiting 0', async () => {
    const files = (await readdir(path.join(root, 'config/life-events'))).map((f) =>
      path.join('config/life-events', f),
    );
    expect(files.length).toBeGreaterThanOrEqual(4);
    const result = leo('validate', ...files);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('prints file:path: code: message for each error and exits 1', async () => {
    const file = path.join(scratch, 'broken.yaml');
    await writeFile(
      file,
      toYaml({
        key: 'broken',
        version: 1,
        title: { sv: 'Trasig', en: 'Broken' },
        description: { sv: 'Trasig', en: 'Broken' },
        inputs: ['person.name'],
        steps: [
          {
            id: 'a',
            agency: 'nowhere',
            action: 'x',
            kind: 'automatic',
            needs: ['person.name'],
            produces: [],
          },
          {
            id: 'a',
            agency: 'skatteverket',
            action: 'register-f-tax',
            kind: 'automatic',
            needs: ['business.orgNumber'],
            produces: [],
          },
        ],
      }),
    );
    const result = leo('validate', file);
    expect(result.status).toBe(1);
    const lines = result.stdout.trim().split('\n');
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/broken\.yaml:\/steps\/0\/agency: unknown-agency: /),
        expect.stringMatching(/broken\.yaml:\/steps\/1\/id: duplicate-step-id: /),
        expect.stringMatching(/broken\.yaml:\/steps\/1\/needs\/0: need-unavailable: /),
      ]),
    );
  });

  it('plans a life event from the facts given', () => {
    const facts = JSON.stringify({
      'person.name': 'Anna Andersson',
      'person.personalNumber': '199012119948',
      'business.legalForm': 'enskild-naringsidkare',
    });
    const result = leo('plan', 'config/life-events/start-business.yaml', '--facts', facts);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const plan = JSON.parse(result.stdout) as {
      steps: Array<{ id: string; status: string }>;
      missing: { citizen: string[] };
    };
    expect(plan.steps.length).toBeGreaterThan(0);
    expect(plan.missing.citizen).not.toContain('person.name');
    expect(plan.missing.citizen.length).toBeGreaterThan(0);
  });

  it('explains itself when called wrongly', () => {
    const result = leo();
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('usage:');
  });
});
