import { describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { uuidv7 } from '../common/uuid.js';
import { PARTITION_COUNT, partitionOf, planLeases, type LeaseRow } from './partitioning.js';

const rows = (owners: Array<string | null>, live = true): LeaseRow[] =>
  owners.map((owner, partition) => ({ partition, owner, epoch: 1, live }));

describe('partitionOf', () => {
  it('spreads time-ordered and random ids over every partition, near evenly', () => {
    const counts = new Array<number>(PARTITION_COUNT).fill(0);
    for (let i = 0; i < 32_000; i += 1) {
      const id = i % 2 === 0 ? uuidv7() : randomUUID();
      counts[partitionOf(id)] = (counts[partitionOf(id)] ?? 0) + 1;
    }
    expect(Math.min(...counts)).toBeGreaterThan(800);
    expect(Math.max(...counts)).toBeLessThan(1_200);
  });

  it('reads the last 16 bits of the id', () => {
    expect(partitionOf('00000000-0000-7000-8000-000000000000')).toBe(0);
    expect(partitionOf('00000000-0000-7000-8000-00000000ffff')).toBe(0xffff % PARTITION_COUNT);
    expect(partitionOf('00000000-0000-7000-8000-000000000021')).toBe(1);
  });

  it('refuses what is not an id', () => {
    expect(() => partitionOf('case')).toThrow('not a case id');
  });
});

describe('planLeases', () => {
  it('takes every free partition when alone', () => {
    const plan = planLeases({
      member: 'a',
      members: 1,
      held: [],
      rows: rows(new Array(32).fill(null)),
    });
    expect(plan.acquire).toHaveLength(32);
    expect(plan.release).toEqual([]);
  });

  it('releases what is over its share when another engine joins', () => {
    const plan = planLeases({
      member: 'a',
      members: 2,
      held: Array.from({ length: 32 }, (_, i) => i),
      rows: rows(new Array(32).fill('a')),
    });
    expect(plan.release).toEqual(Array.from({ length: 16 }, (_, i) => 16 + i));
    expect(plan.acquire).toEqual([]);
  });

  it('takes only free partitions up to its share, never a live one of another', () => {
    const owners: Array<string | null> = new Array(32).fill('a');
    for (let p = 20; p < 32; p += 1) owners[p] = null;
    const plan = planLeases({ member: 'b', members: 2, held: [], rows: rows(owners) });
    expect(plan.acquire).toHaveLength(12);
    expect(plan.acquire.every((p) => p >= 20)).toBe(true);
  });

  it('takes the partitions of an engine whose lease ran out', () => {
    const expired = rows(new Array(32).fill('dead'), false);
    const plan = planLeases({ member: 'b', members: 1, held: [], rows: expired });
    expect([...plan.acquire].sort((x, y) => x - y)).toEqual(
      Array.from({ length: 32 }, (_, i) => i),
    );
  });

  it('takes back a partition whose row names it but that it does not hold (a failed release)', () => {
    const owners: Array<string | null> = new Array(32).fill('b');
    owners[5] = 'a';
    const plan = planLeases({ member: 'a', members: 2, held: [], rows: rows(owners) });
    expect(plan.acquire).toEqual([5]);
  });

  it('shares 32 partitions among three as 11, 11 and 10', () => {
    const owners: Array<string | null> = new Array(32).fill(null);
    const held: Record<string, number[]> = { a: [], b: [], c: [] };
    for (let round = 0; round < 3; round += 1) {
      for (const member of ['a', 'b', 'c']) {
        const plan = planLeases({
          member,
          members: 3,
          held: held[member] ?? [],
          rows: owners.map((owner, partition) => ({
            partition,
            owner,
            epoch: 0,
            live: owner !== null,
          })),
        });
        for (const p of plan.release) owners[p] = null;
        for (const p of plan.acquire) owners[p] = member;
        held[member] = owners.flatMap((o, p) => (o === member ? [p] : []));
      }
    }
    expect(
      Object.values(held)
        .map((h) => h.length)
        .sort(),
    ).toEqual([10, 11, 11]);
    expect(owners.every((o) => o !== null)).toBe(true);
  });
});
