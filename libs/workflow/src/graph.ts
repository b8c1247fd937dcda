import type { LifeEventDefinition } from './types.js';

/** Ids of the steps producing each fact, in definition order. */
export function producersByFact(definition: LifeEventDefinition): Map<string, string[]> {
  const producers = new Map<string, string[]>();
  for (const step of definition.steps) {
    for (const fact of step.produces) {
      const ids = producers.get(fact) ?? [];
      if (!ids.includes(step.id)) ids.push(step.id);
      producers.set(fact, ids);
    }
  }
  return producers;
}

/**
 * What each step waits for: the steps in its `after` and the producers of the facts it needs,
 * sorted by id. Keys in definition order. For a definition that validated without errors.
 */
export function dependencies(definition: LifeEventDefinition): Map<string, string[]> {
  const producers = producersByFact(definition);
  const result = new Map<string, string[]>();
  for (const step of definition.steps) {
    const deps = new Set(step.after ?? []);
    for (const fact of step.needs) {
      for (const producer of producers.get(fact) ?? []) deps.add(producer);
    }
    result.set(step.id, [...deps].sort());
  }
  return result;
}
