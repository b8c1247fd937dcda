import type { Agency, AgencyInstance, Catalogue } from './types.js';

/**
 * Agencies of many separate parties (decision 0024): the municipalities are one catalogue entry,
 * `kommun`, that a life event names once; each of them is an agency of its own at run time,
 * `kommun-0180`, with its own queue, results stream and credential. A step goes to the instance
 * its routing need names, chosen when it is first dispatched.
 */

/** An instance's id: the routing fact's value, e.g. `0180` (a municipality code). */
export const INSTANCE_ID_PATTERN = /^[a-z0-9]{1,16}$/;

/** The agency code of an instance: `kommun` and `0180` make `kommun-0180`. */
export function instanceCode(agencyCode: string, id: string): string {
  return `${agencyCode}-${id}`;
}

/** An onboarded instance as an agency of its own: the family's actions, its own code and name. */
export function instanceAgency(family: Agency, instance: AgencyInstance): Agency {
  return {
    code: instanceCode(family.code, instance.id),
    name: instance.name,
    adapter: instance.adapter ?? family.adapter,
    actions: family.actions,
    lookups: [],
  };
}

/**
 * Every agency that has a queue, in the entries' order: each entry without instances, and each
 * onboarded instance of one with them (never the family entry itself: nothing is sent to it).
 */
export function queuedAgencies(entries: Iterable<Agency>): Agency[] {
  const queued: Agency[] = [];
  for (const entry of entries) {
    if (entry.instances === undefined) queued.push(entry);
    else
      for (const instance of entry.instances.onboarded)
        queued.push(instanceAgency(entry, instance));
  }
  return queued;
}

/**
 * The agency a code names, for its name and actions: a catalogue entry, or an instance of one
 * with instances (`onboarded` false for an instance leo cannot reach, named after its family).
 */
export function agencyByCode(
  catalogue: Pick<Catalogue, 'agencies'>,
  code: string,
): { agency: Agency; family?: Agency; onboarded: boolean } | undefined {
  const entry = catalogue.agencies.get(code);
  if (entry) return { agency: entry, onboarded: entry.instances === undefined };
  const dash = code.lastIndexOf('-');
  for (let at = dash; at > 0; at = code.lastIndexOf('-', at - 1)) {
    const family = catalogue.agencies.get(code.slice(0, at));
    if (!family?.instances) continue;
    const id = code.slice(at + 1);
    const instance = family.instances.onboarded.find((i) => i.id === id);
    if (instance) return { agency: instanceAgency(family, instance), family, onboarded: true };
    const name = {
      sv: `${family.name.sv} ${id}`,
      en: `${family.name.en} ${id}`,
    };
    return {
      agency: instanceAgency(family, { id, name }),
      family,
      onboarded: false,
    };
  }
  return undefined;
}

/**
 * Which of a step's needs routes it to an instance of `agency`: the one need whose fact type has
 * the agency's routing format. `none` or `several` is a definition error (validate reports it).
 */
export function routingNeed(
  catalogue: Pick<Catalogue, 'facts'>,
  agency: Agency,
  needs: readonly string[],
): { key: string } | { problem: 'none' | 'several'; keys: string[] } {
  const format = agency.instances?.routedBy;
  const keys = needs.filter((key) => {
    const schema = catalogue.facts.get(key)?.schema;
    return format !== undefined && schema?.format === format;
  });
  const [first] = keys;
  if (keys.length === 1 && first !== undefined) return { key: first };
  return { problem: keys.length === 0 ? 'none' : 'several', keys };
}

/**
 * Where a step to `agency` goes, given its routing need's value: the instance's code, and whether
 * leo can reach it. An agency without instances is its own destination.
 */
export function routeTo(agency: Agency, value: unknown): { code: string; onboarded: boolean } {
  if (agency.instances === undefined) return { code: agency.code, onboarded: true };
  if (typeof value !== 'string' || !INSTANCE_ID_PATTERN.test(value)) {
    return { code: agency.code, onboarded: false };
  }
  return {
    code: instanceCode(agency.code, value),
    onboarded: agency.instances.onboarded.some((i) => i.id === value),
  };
}

/**
 * Where a step to `agencyCode` with `needs` goes: its agency, or the instance its routing need
 * names, the need's value read with `valueOf` (undefined while unknown: then no instance yet).
 */
export function routeStep(
  catalogue: Pick<Catalogue, 'agencies' | 'facts'>,
  agencyCode: string,
  needs: readonly string[],
  valueOf: (key: string) => unknown,
): { code: string; onboarded: boolean } {
  const agency = catalogue.agencies.get(agencyCode);
  if (!agency?.instances) return { code: agencyCode, onboarded: true };
  const route = routingNeed(catalogue, agency, needs);
  // A published definition names exactly one routing need (validate's agency-route-unclear).
  if ('problem' in route) return { code: agencyCode, onboarded: false };
  return routeTo(agency, valueOf(route.key));
}
