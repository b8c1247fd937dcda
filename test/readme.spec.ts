import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { ENVIRONMENT_VARIABLE_NAMES } from '../src/config/config.schema.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const packageJson = JSON.parse(
  readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
) as {
  scripts: Record<string, string>;
};
const ci = readFileSync(new URL('../.ci/run', import.meta.url), 'utf8');

describe('README', () => {
  const documented = [...readme.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \|/gm)].map((m) => m[1]);

  it('documents every configuration variable, and only those', () => {
    expect([...documented].sort()).toEqual([...ENVIRONMENT_VARIABLE_NAMES].sort());
  });

  it('keeps the two-command quick start, and CI runs exactly the documented test command', () => {
    const quickStart = readme.split('## Quick start')[1]?.split('##')[0] ?? '';
    expect(quickStart).toContain('npm ci && npm start');
    expect(quickStart).toContain('npm test');
    expect(packageJson.scripts.start).toBeDefined();
    expect(packageJson.scripts.test).toBeDefined();
    const commands = ci
      .split('\n')
      .filter(
        (l) =>
          l.trim() && !l.trim().startsWith('#') && !l.startsWith('set ') && !l.startsWith('cd '),
      );
    expect(commands).toEqual(['npm ci --no-audit --no-fund', 'npm test']);
  });
});
