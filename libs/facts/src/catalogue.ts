import { AGENCY_CODE_PATTERN } from '#agency-contract';
import {
  ACTION_NAME_PATTERN,
  FACT_KEY_PATTERN,
  SENSITIVITIES,
  type Agency,
  type AgencyAction,
  type FactSource,
  type FactType,
  type Sensitivity,
  parseIsoDuration,
} from '#workflow';
import {
  Problems,
  type CatalogueProblem,
  isRecord,
  parseYamlList,
  readObject,
  readString,
  readStringList,
  readText,
} from './reading.js';
import { instanceProblems, readInstances } from './agency-instances.js';
import { mockProblems, readMockBehaviour } from './mock-behaviour.js';
import { createSchemaCompiler } from './schema.js';

export type { CatalogueProblem } from './reading.js';

export interface FactCatalogueParseResult {
  /** The well-formed entries; an entry with a problem is left out. */
  facts: FactType[];
  problems: CatalogueProblem[];
}

export interface AgenciesParseResult {
  /** The well-formed entries; an entry with a problem is left out. */
  agencies: Agency[];
  problems: CatalogueProblem[];
}

// One definition of each wire-name pattern: agency codes from the agency contract (they name
// queues), fact keys and action names from the workflow language.
export { ACTION_NAME_PATTERN, AGENCY_CODE_PATTERN, FACT_KEY_PATTERN };

/** Who serves an agency's queue: a mock built into leo, or an external adapter. */
const ADAPTERS = ['mock', 'external'] as const;
/** Earlier name of `external`, still read. */
const LEGACY_EXTERNAL = 'http';
const LOOKUP_PREFIX = 'lookup:';

/**
 * Reads a fact source as written in facts.yaml: `citizen`, `produced` or `lookup:<agency code>`.
 * Returns undefined for anything else.
 */
export function parseFactSource(text: string): FactSource | undefined {
  if (text === 'citizen' || text === 'produced') return { kind: text };
  if (text.startsWith(LOOKUP_PREFIX)) {
    const agency = text.slice(LOOKUP_PREFIX.length);
    if (AGENCY_CODE_PATTERN.test(agency)) return { kind: 'lookup', agency };
  }
  return undefined;
}

/** The written form of a fact source, as in facts.yaml. */
export function formatFactSource(source: FactSource): string {
  return source.kind === 'lookup' ? `${LOOKUP_PREFIX}${source.agency}` : source.kind;
}

/**
 * Parses config/facts.yaml (or the same format as JSON): a list of fact types whose `source` is
 * written as a string. Checks each entry's shape and that its schema compiles with leo's formats.
 * A `source` already in object form (`{kind: lookup, agency: …}`, as stored) is accepted too, so
 * an entry read back from the API can be sent again.
 */
export function parseFactCatalogue(text: string): FactCatalogueParseResult {
  const problems: CatalogueProblem[] = [];
  const root = parseYamlList(text, problems);
  if (root === undefined) return { facts: [], problems };

  const compiler = createSchemaCompiler();
  const facts: FactType[] = [];
  const seen = new Map<string, number>();
  root.forEach((entry, index) => {
    const at = new Problems(`/${index}`, problems);
    const fact = readFact(entry, at);
    if (!fact) return;
    const first = seen.get(fact.key);
    if (first !== undefined) {
      at.add('/key', `duplicate fact key ${fact.key} (first at /${first})`);
      return;
    }
    seen.set(fact.key, index);
    const compileError = compiler.tryCompile(fact.schema);
    if (compileError !== undefined) {
      at.add('/schema', `schema does not compile: ${compileError}`);
      return;
    }
    facts.push(fact);
  });
  return { facts, problems };
}

/** Parses config/agencies.yaml (or the same format as JSON): a list of agencies. */
export function parseAgencies(text: string): AgenciesParseResult {
  const problems: CatalogueProblem[] = [];
  const root = parseYamlList(text, problems);
  if (root === undefined) return { agencies: [], problems };

  const agencies: Agency[] = [];
  const seen = new Map<string, number>();
  root.forEach((entry, index) => {
    const at = new Problems(`/${index}`, problems);
    const agency = readAgency(entry, at);
    if (!agency) return;
    const first = seen.get(agency.code);
    if (first !== undefined) {
      at.add('/code', `duplicate agency code ${agency.code} (first at /${first})`);
      return;
    }
    seen.set(agency.code, index);
    agencies.push(agency);
  });
  return { agencies, problems };
}

/**
 * Checks the facts and agencies against each other. Paths are `/facts/<index>/…` and
 * `/agencies/<index>/…`, indexes into the given arrays:
 * - a `lookup:<agency>` source names a known agency, which lists the fact in its `lookups`;
 * - an agency's `lookups` are known facts whose source is a lookup from that agency;
 * - an action's `produces` are known facts whose source is `produced`;
 * - every `produced` fact can be produced by some action (otherwise nothing could ever set it),
 *   unless `options.requireProducers` is false;
 * - an action's `changes` are among its agency's `lookups` (its own register);
 * - the facts a configured mock reads (`requires`, `from`) are known;
 * - fact keys and agency codes are unique.
 *
 * `requireProducers: false` is for a catalogue edited one entry at a time (the admin API): a new
 * produced fact must exist before the action that produces it can name it, so for a moment no
 * action does. Such a fact cannot be used meanwhile: a life event needing it is refused, as
 * nothing produces it. Seed files, read whole, are checked with it on.
 */
export function checkCatalogue(
  facts: FactType[],
  agencies: Agency[],
  options: { requireProducers?: boolean } = {},
): CatalogueProblem[] {
  const requireProducers = options.requireProducers ?? true;
  const problems: CatalogueProblem[] = [];
  const factIndex = new Map<string, number>();
  facts.forEach((fact, i) => {
    const first = factIndex.get(fact.key);
    if (first === undefined) factIndex.set(fact.key, i);
    else
      problems.push({
        path: `/facts/${i}/key`,
        message: `duplicate fact key ${fact.key} (first at /facts/${first})`,
      });
  });
  const agencyIndex = new Map<string, number>();
  agencies.forEach((agency, j) => {
    const first = agencyIndex.get(agency.code);
    if (first === undefined) agencyIndex.set(agency.code, j);
    else
      problems.push({
        path: `/agencies/${j}/code`,
        message: `duplicate agency code ${agency.code} (first at /agencies/${first})`,
      });
  });

  facts.forEach((fact, i) => {
    if (fact.source.kind !== 'lookup') return;
    const j = agencyIndex.get(fact.source.agency);
    const agency = j === undefined ? undefined : agencies[j];
    if (agency === undefined) {
      problems.push({
        path: `/facts/${i}/source`,
        message: `unknown agency ${fact.source.agency}`,
      });
    } else if (!agency.lookups.includes(fact.key)) {
      problems.push({
        path: `/facts/${i}/source`,
        message: `agency ${agency.code} does not list ${fact.key} among its lookups`,
      });
    }
  });

  const producible = new Set<string>();
  agencies.forEach((agency, j) => {
    agency.lookups.forEach((key, k) => {
      const fact = factAt(facts, factIndex, key);
      const path = `/agencies/${j}/lookups/${k}`;
      if (!fact) problems.push({ path, message: `unknown fact ${key}` });
      else if (fact.source.kind !== 'lookup' || fact.source.agency !== agency.code) {
        problems.push({
          path,
          message: `${key} has source ${formatFactSource(fact.source)}, not ${LOOKUP_PREFIX}${agency.code}`,
        });
      }
    });
    agency.actions.forEach((action, a) => {
      (action.changes ?? []).forEach((key, c) => {
        if (!agency.lookups.includes(key)) {
          problems.push({
            path: `/agencies/${j}/actions/${a}/changes/${c}`,
            message: `${key} is not among ${agency.code}'s lookups: an action changes only its own register`,
          });
        }
      });
      const mock = action.mock;
      const read = [
        ...(mock?.requires ?? []).map((key, r) => ({ key, path: `requires/${r}` })),
        ...Object.entries(mock?.produce ?? {}).flatMap(([produced, rule]) =>
          'from' in rule ? [{ key: rule.from, path: `produce/${produced}/from` }] : [],
        ),
      ];
      for (const { key, path } of read) {
        if (!factAt(facts, factIndex, key)) {
          problems.push({
            path: `/agencies/${j}/actions/${a}/mock/${path}`,
            message: `unknown fact ${key}`,
          });
        }
      }
      action.produces.forEach((key, p) => {
        const fact = factAt(facts, factIndex, key);
        const path = `/agencies/${j}/actions/${a}/produces/${p}`;
        if (!fact) problems.push({ path, message: `unknown fact ${key}` });
        else if (fact.source.kind !== 'produced') {
          problems.push({
            path,
            message: `${key} has source ${formatFactSource(fact.source)}; only facts with source produced can be produced by an action`,
          });
        } else producible.add(key);
      });
    });
  });

  problems.push(...instanceProblems(agencies));
  facts.forEach((fact, i) => {
    if (requireProducers && fact.source.kind === 'produced' && !producible.has(fact.key)) {
      problems.push({
        path: `/facts/${i}/source`,
        message: `no agency action produces ${fact.key}`,
      });
    }
  });
  return problems;
}

function factAt(facts: FactType[], index: Map<string, number>, key: string): FactType | undefined {
  const i = index.get(key);
  return i === undefined ? undefined : facts[i];
}

// ---- reading ------------------------------------------------------------------------------

const FACT_KEY = {
  regex: FACT_KEY_PATTERN,
  describe: 'a fact key in dotted lower camel case (person.address)',
};

function readFact(entry: unknown, at: Problems): FactType | undefined {
  const before = at.count();
  const object = readObject(entry, at, '', [
    'key',
    'schema',
    'label',
    'description',
    'sensitivity',
    'source',
    'maxAge',
  ]);
  if (!object) return undefined;

  const key = readString(object, 'key', at, FACT_KEY);
  const label = readText(object, 'label', at, true);
  const description = readText(object, 'description', at, false);

  let schema: Record<string, unknown> | undefined;
  if (object.schema === undefined) at.add('/schema', 'is required');
  else if (!isRecord(object.schema)) at.add('/schema', 'must be a JSON Schema object');
  // A copy: YAML anchors make several facts share one schema object.
  else schema = structuredClone(object.schema);

  let sensitivity: Sensitivity | undefined;
  const rawSensitivity = object.sensitivity;
  if (rawSensitivity === undefined) at.add('/sensitivity', 'is required');
  else if (!SENSITIVITIES.includes(rawSensitivity as Sensitivity)) {
    at.add('/sensitivity', `must be one of ${SENSITIVITIES.join(', ')}`);
  } else sensitivity = rawSensitivity as Sensitivity;

  const source = readSource(object.source, at);

  const maxAge = object.maxAge;
  if (maxAge !== undefined && (typeof maxAge !== 'string' || !parseIsoDuration(maxAge))) {
    at.add('/maxAge', 'must be an ISO 8601 duration such as P1D or PT12H');
  }

  if (at.count() !== before || !key || !label || !schema || !sensitivity || !source)
    return undefined;
  return {
    key,
    schema,
    label,
    ...(description ? { description } : {}),
    sensitivity,
    source,
    ...(typeof maxAge === 'string' ? { maxAge } : {}),
  };
}

function readSource(value: unknown, at: Problems): FactSource | undefined {
  const expected = 'citizen, produced or lookup:<agency code>';
  if (value === undefined) {
    at.add('/source', 'is required');
    return undefined;
  }
  if (typeof value === 'string') {
    const source = parseFactSource(value);
    if (!source) at.add('/source', `must be ${expected}`);
    return source;
  }
  if (isRecord(value)) {
    // The stored form, e.g. read back from the API.
    const kind = value.kind;
    const agency = value.agency;
    if ((kind === 'citizen' || kind === 'produced') && Object.keys(value).length === 1)
      return { kind };
    if (kind === 'lookup' && typeof agency === 'string' && Object.keys(value).length === 2) {
      const source = parseFactSource(`${LOOKUP_PREFIX}${agency}`);
      if (source) return source;
    }
  }
  at.add('/source', `must be ${expected}`);
  return undefined;
}

function readAgency(entry: unknown, at: Problems): Agency | undefined {
  const before = at.count();
  const object = readObject(entry, at, '', [
    'code',
    'name',
    'adapter',
    'actions',
    'lookups',
    'instances',
  ]);
  if (!object) return undefined;

  const code = readString(object, 'code', at, {
    regex: AGENCY_CODE_PATTERN,
    describe: 'a lower-case code (skatteverket)',
  });
  const name = readText(object, 'name', at, true);

  let adapter: Agency['adapter'] | undefined;
  if (object.adapter === undefined) at.add('/adapter', 'is required');
  else if (object.adapter === LEGACY_EXTERNAL) adapter = 'external';
  else if (!ADAPTERS.includes(object.adapter as Agency['adapter'])) {
    at.add('/adapter', `must be one of ${ADAPTERS.join(', ')}`);
  } else adapter = object.adapter as Agency['adapter'];

  const actions: AgencyAction[] = [];
  if (object.actions === undefined) at.add('/actions', 'is required (use [] for none)');
  else if (!Array.isArray(object.actions)) at.add('/actions', 'must be a list');
  else {
    (object.actions as unknown[]).forEach((raw, i) => {
      const action = readAction(raw, at.under(`/actions/${i}`));
      if (!action) return;
      if (actions.some((other) => other.name === action.name)) {
        at.add(`/actions/${i}/name`, `duplicate action ${action.name}`);
      } else actions.push(action);
    });
  }

  const lookups = readStringList(object, 'lookups', at, FACT_KEY);
  const instances =
    object.instances === undefined
      ? undefined
      : readInstances(object.instances, at.under('/instances'));

  if (at.count() !== before || !code || !name || !adapter || !lookups) return undefined;
  return { code, name, adapter, actions, lookups, ...(instances ? { instances } : {}) };
}

function readAction(entry: unknown, at: Problems): AgencyAction | undefined {
  const before = at.count();
  const object = readObject(entry, at, '', ['name', 'title', 'produces', 'changes', 'mock']);
  if (!object) return undefined;
  const name = readString(object, 'name', at, {
    regex: ACTION_NAME_PATTERN,
    describe: 'a kebab-case action name (register-sole-trader)',
  });
  const title = readText(object, 'title', at, true);
  const produces = readStringList(object, 'produces', at, FACT_KEY);
  const changes =
    object.changes === undefined ? [] : readStringList(object, 'changes', at, FACT_KEY);
  const mock =
    object.mock === undefined ? undefined : readMockBehaviour(object.mock, at.under('/mock'));
  if (at.count() !== before || !name || !title || !produces || !changes) return undefined;
  const action: AgencyAction = {
    name,
    title,
    produces,
    ...(changes.length > 0 ? { changes } : {}),
  };
  if (mock) {
    action.mock = mock;
    for (const problem of mockProblems(action)) at.add(problem.path, problem.message);
    if (at.count() !== before) return undefined;
  }
  return action;
}
