import { AGENCY_CODE_PATTERN } from '#agency-contract';
import {
  INSTANCE_ID_PATTERN,
  instanceCode,
  type Agency,
  type AgencyInstance,
  type AgencyInstances,
} from '#workflow';
import { FACT_FORMATS } from './formats.js';
import { type CatalogueProblem, Problems, readObject, readString, readText } from './reading.js';

/**
 * Reads an agency's `instances` (decision 0024): the fact format that routes a step to one of
 * them, and the instances onboarded, each with an id, a name and optionally its own adapter.
 */
export function readInstances(value: unknown, at: Problems): AgencyInstances | undefined {
  const before = at.count();
  const object = readObject(value, at, '', ['routedBy', 'onboarded']);
  if (!object) return undefined;
  const routedBy = readString(object, 'routedBy', at);
  if (routedBy !== undefined && !(FACT_FORMATS as readonly string[]).includes(routedBy)) {
    at.add('/routedBy', `must be one of leo's fact formats: ${FACT_FORMATS.join(', ')}`);
  }
  const onboarded: AgencyInstance[] = [];
  if (object.onboarded === undefined) at.add('/onboarded', 'is required (use [] for none)');
  else if (!Array.isArray(object.onboarded)) at.add('/onboarded', 'must be a list');
  else {
    const seen = new Map<string, number>();
    (object.onboarded as unknown[]).forEach((raw, i) => {
      const instance = readInstance(raw, at.under(`/onboarded/${String(i)}`));
      if (!instance) return;
      const first = seen.get(instance.id);
      if (first !== undefined) {
        at.add(
          `/onboarded/${String(i)}/id`,
          `duplicate id ${instance.id} (first at ${String(first)})`,
        );
        return;
      }
      seen.set(instance.id, i);
      onboarded.push(instance);
    });
  }
  if (at.count() !== before || routedBy === undefined) return undefined;
  return { routedBy, onboarded };
}

function readInstance(value: unknown, at: Problems): AgencyInstance | undefined {
  const before = at.count();
  const object = readObject(value, at, '', ['id', 'name', 'adapter']);
  if (!object) return undefined;
  const id = readString(object, 'id', at, {
    regex: INSTANCE_ID_PATTERN,
    describe: 'the routing value: lower-case letters and digits (0180)',
  });
  const name = readText(object, 'name', at, true);
  const adapter = object.adapter;
  if (adapter !== undefined && adapter !== 'mock' && adapter !== 'external') {
    at.add('/adapter', 'must be one of mock, external');
  }
  if (at.count() !== before || id === undefined || name === undefined) return undefined;
  return { id, name, ...(adapter === 'mock' || adapter === 'external' ? { adapter } : {}) };
}

/**
 * Cross-checks of agencies with instances: no look-ups (which instance would answer?), and
 * every instance's code a valid agency code that no other entry has.
 */
export function instanceProblems(agencies: readonly Agency[]): CatalogueProblem[] {
  const problems: CatalogueProblem[] = [];
  const codes = new Set(agencies.map((a) => a.code));
  agencies.forEach((agency, j) => {
    if (!agency.instances) return;
    if (agency.lookups.length > 0) {
      problems.push({
        path: `/agencies/${String(j)}/lookups`,
        message: `${agency.code} is many agencies (instances), which cannot be the source of look-ups: use []`,
      });
    }
    agency.instances.onboarded.forEach((instance, i) => {
      const code = instanceCode(agency.code, instance.id);
      const path = `/agencies/${String(j)}/instances/onboarded/${String(i)}/id`;
      if (!AGENCY_CODE_PATTERN.test(code)) {
        problems.push({
          path,
          message: `makes the agency code ${code}, which is not ${String(AGENCY_CODE_PATTERN)}`,
        });
      } else if (codes.has(code)) {
        problems.push({ path, message: `makes the agency code ${code}, which another agency has` });
      }
    });
  });
  return problems;
}
