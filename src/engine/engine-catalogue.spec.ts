import { describe, expect, it } from '@jest/globals';
import type { LifeEventDefinition } from '#workflow';
import type { LifeEventDefinitionRow } from '../definitions/definition.entities.js';
import type { DefinitionsRepository } from '../definitions/definitions.repository.js';
import { EngineCatalogue } from './engine-catalogue.js';

const BODY = { key: 'start-business', steps: [] } as unknown as LifeEventDefinition;
const ROW = {
  id: 'def-1',
  key: 'start-business',
  version: 1,
  body: BODY,
} as LifeEventDefinitionRow;

/** A repository that counts its reads and answers when told to. */
function repository(): {
  fake: DefinitionsRepository;
  reads: { current: number; published: number };
  answer: (error?: Error) => void;
} {
  const reads = { current: 0, published: 0 };
  const waiting: Array<(error?: Error) => void> = [];
  const later = <T>(value: T): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      waiting.push((error) => {
        if (error) reject(error);
        else resolve(value);
      });
    });
  const fake = {
    findCurrent: () => {
      reads.current += 1;
      return later(ROW);
    },
    listPublished: () => {
      reads.published += 1;
      return later([ROW]);
    },
  } as unknown as DefinitionsRepository;
  return {
    fake,
    reads,
    answer: (error) => {
      for (const settle of waiting.splice(0)) settle(error);
    },
  };
}

describe('EngineCatalogue', () => {
  it('reads the current version once for all the callers that find it stale at once', async () => {
    const { fake, reads, answer } = repository();
    const catalogue = new EngineCatalogue(fake);
    const calls = Array.from({ length: 20 }, () => catalogue.currentVersion('start-business'));
    answer();
    expect(await Promise.all(calls)).toEqual(Array.from({ length: 20 }, () => ROW));
    expect(reads.current).toBe(1);
    // Kept: the next caller reads nothing.
    expect(await catalogue.currentVersion('start-business')).toBe(ROW);
    expect(reads.current).toBe(1);
  });

  it('lets every waiting caller see a failed read, and reads again on the next call', async () => {
    const { fake, reads, answer } = repository();
    const catalogue = new EngineCatalogue(fake);
    const calls = [
      catalogue.currentVersion('start-business'),
      catalogue.currentVersion('start-business'),
    ];
    answer(new Error('database away'));
    for (const call of calls) await expect(call).rejects.toThrow('database away');
    const again = catalogue.currentVersion('start-business');
    answer();
    expect(await again).toBe(ROW);
    expect(reads.current).toBe(2);
  });

  it('reads the published definitions once for concurrent callers', async () => {
    const { fake, reads, answer } = repository();
    const catalogue = new EngineCatalogue(fake);
    const calls = [catalogue.publishedDefinitions(), catalogue.publishedDefinitions()];
    answer();
    const [first, second] = await Promise.all(calls);
    expect(first?.map((d) => d.key)).toEqual(['start-business']);
    expect(second).toBe(first);
    expect(reads.published).toBe(1);
  });
});
