import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { cleanUpStale } from '../bench/infra.js';

/**
 * The benchmark's start-up clean-up removes only what a bench left behind (a directory of its
 * own with a bench.pid of a process that is gone), never another file or directory whose name
 * begins the same way.
 */
describe('the benchmark clean-up', () => {
  const made: string[] = [];
  afterAll(async () => {
    for (const entry of made) await rm(entry, { recursive: true, force: true });
  });

  it('leaves alone what it did not make, and removes what a dead bench left', async () => {
    const base = tmpdir();
    const someoneElsesFile = path.join(base, `leo-bench-notes-${String(process.pid)}.txt`);
    await writeFile(someoneElsesFile, 'mine');
    const someoneElsesDir = await mkdtemp(path.join(base, 'leo-bench-'));
    const leftBehind = await mkdtemp(path.join(base, 'leo-bench-'));
    made.push(someoneElsesFile, someoneElsesDir, leftBehind);
    await mkdir(path.join(someoneElsesDir, 'data'));
    // A pid no process has (above the kernel's pid_max).
    await writeFile(path.join(leftBehind, 'bench.pid'), '99999999');

    await cleanUpStale(() => undefined);

    expect(existsSync(someoneElsesFile)).toBe(true);
    expect(existsSync(someoneElsesDir)).toBe(true);
    expect(existsSync(leftBehind)).toBe(false);
  });
});
