import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import {
  checkCatalogue,
  formatFactSource,
  parseAgencies,
  parseFactCatalogue,
  parseFactSource,
} from './catalogue.js';

const config = (name: string) =>
  readFileSync(new URL(`../../../config/${name}`, import.meta.url), 'utf8');

const seedFacts = parseFactCatalogue(config('facts.yaml'));
const seedAgencies = parseAgencies(config('agencies.yaml'));

describe('the seed catalogue', () => {
  it('parses with no problems', () => {
    expect(seedFacts.problems).toEqual([]);
    expect(seedAgencies.problems).toEqual([]);
    expect(seedFacts.facts.length).toBeGreaterThan(20);
  });

  it('is consistent', () => {
    expect(checkCatalogue(seedFacts.facts, seedAgencies.agencies)).toEqual([]);
  });

  it('names only existing agencies in lookup sources', () => {
    const codes = new Set(seedAgencies.agencies.map((a) => a.code));
    for (const fact of seedFacts.facts) {
      if (fact.source.kind === 'lookup') expect(codes).toContain(fact.source.agency);
    }
  });

  it('uses only catalogue facts in agencies.yaml', () => {
    const keys = new Set(seedFacts.facts.map((f) => f.key));
    for (const agency of seedAgencies.agencies) {
      for (const key of agency.lookups) expect(keys).toContain(key);
      for (const action of agency.actions)
        for (const key of action.produces) expect(keys).toContain(key);
    }
  });

  it('has the agencies the seeded life events use', () => {
    expect(seedAgencies.agencies.map((a) => a.code).sort()).toEqual([
      'arbetsformedlingen',
      'bolagsverket',
      'forsakringskassan',
      'kommun',
      'pensionsmyndigheten',
      'skatteverket',
      'transportstyrelsen',
    ]);
  });

  it('takes name and address from the population register and the identity number from e-identification', () => {
    const source = (key: string) => seedFacts.facts.find((f) => f.key === key)?.source;
    expect(source('person.name')).toEqual({ kind: 'lookup', agency: 'skatteverket' });
    expect(source('person.address')).toEqual({ kind: 'lookup', agency: 'skatteverket' });
    expect(source('person.personalNumber')).toEqual({ kind: 'citizen' });
  });

  it('gives every fact Swedish and English labels', () => {
    for (const fact of seedFacts.facts) {
      expect(fact.label.sv.trim()).not.toBe('');
      expect(fact.label.en.trim()).not.toBe('');
    }
  });

  it('gives each fact its own schema object, though the YAML shares one through an anchor', () => {
    const schema = (key: string) => seedFacts.facts.find((f) => f.key === key)?.schema;
    expect(schema('move.newAddress')).toEqual(schema('person.address'));
    expect(schema('move.newAddress')).not.toBe(schema('person.address'));
  });
});

describe('fact sources', () => {
  it.each([
    ['citizen', { kind: 'citizen' }],
    ['produced', { kind: 'produced' }],
    ['lookup:skatteverket', { kind: 'lookup', agency: 'skatteverket' }],
  ] as const)('%s round-trips', (text, source) => {
    expect(parseFactSource(text)).toEqual(source);
    expect(formatFactSource(source)).toBe(text);
  });

  it.each(['', 'Citizen', 'lookup:', 'lookup:Skatteverket', 'lookup:skatte verket', 'agency'])(
    'refuses %p',
    (text) => {
      expect(parseFactSource(text)).toBeUndefined();
    },
  );
});

const FACT = `
- key: person.nickname
  label: { sv: Smeknamn, en: Nickname }
  sensitivity: personal
  source: citizen
  schema: { type: string }
`;

describe('parseFactCatalogue', () => {
  it('reads a fact, converting its source', () => {
    expect(parseFactCatalogue(FACT)).toEqual({
      facts: [
        {
          key: 'person.nickname',
          label: { sv: 'Smeknamn', en: 'Nickname' },
          sensitivity: 'personal',
          source: { kind: 'citizen' },
          schema: { type: 'string' },
        },
      ],
      problems: [],
    });
  });

  it('accepts the stored source form, as JSON', () => {
    const entry = {
      key: 'person.nickname',
      label: { sv: 'Smeknamn', en: 'Nickname' },
      sensitivity: 'personal',
      source: { kind: 'lookup', agency: 'skatteverket' },
      schema: { type: 'string' },
    };
    const parsed = parseFactCatalogue(JSON.stringify([entry]));
    expect(parsed.problems).toEqual([]);
    expect(parsed.facts[0]?.source).toEqual({ kind: 'lookup', agency: 'skatteverket' });
  });

  it('reports not-YAML and not-a-list at the root', () => {
    expect(parseFactCatalogue('- [unclosed').problems[0]?.path).toBe('');
    expect(parseFactCatalogue('key: value').problems).toEqual([
      { path: '', message: 'must be a list' },
    ]);
  });

  it('reports every shape problem of an entry with its path, and leaves the entry out', () => {
    const parsed = parseFactCatalogue(`
- key: Person.Nickname
  label: { sv: Smeknamn }
  description: nope
  sensitivity: secret
  source: 'lookup:'
  schema: { type: string }
  colour: blue
`);
    expect(parsed.facts).toEqual([]);
    expect(parsed.problems.map((p) => p.path).sort()).toEqual([
      '/0/colour',
      '/0/description',
      '/0/key',
      '/0/label/en',
      '/0/sensitivity',
      '/0/source',
    ]);
  });

  it('reports missing properties', () => {
    const parsed = parseFactCatalogue('- key: person.nickname');
    expect(parsed.problems.map((p) => p.path).sort()).toEqual([
      '/0/label',
      '/0/schema',
      '/0/sensitivity',
      '/0/source',
    ]);
  });

  it('reports a duplicate key', () => {
    const parsed = parseFactCatalogue(FACT + FACT);
    expect(parsed.facts).toHaveLength(1);
    expect(parsed.problems).toEqual([
      { path: '/1/key', message: 'duplicate fact key person.nickname (first at /0)' },
    ]);
  });

  it.each([
    ['an unknown keyword', { type: 'string', maxLenght: 3 }],
    ['an unknown format', { type: 'string', format: 'skonummer' }],
    ['an invalid keyword value', { type: 'strung' }],
  ])('reports a schema that does not compile: %s', (_, schema) => {
    const entry = {
      key: 'person.nickname',
      label: { sv: 'a', en: 'b' },
      sensitivity: 'public',
      source: 'citizen',
      schema,
    };
    const parsed = parseFactCatalogue(JSON.stringify([entry]));
    expect(parsed.facts).toEqual([]);
    expect(parsed.problems).toEqual([
      { path: '/0/schema', message: expect.stringMatching(/^schema does not compile: /) },
    ]);
  });
});

const AGENCY = `
- code: skatteverket
  name: { sv: Skatteverket, en: Swedish Tax Agency }
  adapter: mock
  actions:
    - name: register-f-tax
      title: { sv: F-skatt, en: F-tax }
      produces: [business.fTaxStatus]
  lookups: [person.nickname]
`;

describe('parseAgencies', () => {
  it('reads an agency', () => {
    const parsed = parseAgencies(AGENCY);
    expect(parsed.problems).toEqual([]);
    expect(parsed.agencies[0]).toEqual({
      code: 'skatteverket',
      name: { sv: 'Skatteverket', en: 'Swedish Tax Agency' },
      adapter: 'mock',
      actions: [
        {
          name: 'register-f-tax',
          title: { sv: 'F-skatt', en: 'F-tax' },
          produces: ['business.fTaxStatus'],
        },
      ],
      lookups: ['person.nickname'],
    });
  });

  it('reports shape problems with their paths', () => {
    const parsed = parseAgencies(`
- code: Skatteverket
  name: { sv: Skatteverket, en: Swedish Tax Agency }
  adapter: soap
  actions:
    - name: registerFTax
      title: { sv: F-skatt, en: F-tax }
      produces: [business.fTaxStatus, business.fTaxStatus]
    - name: register-vat
      produces: vat
  lookups: [Person]
`);
    expect(parsed.agencies).toEqual([]);
    expect(parsed.problems.map((p) => p.path).sort()).toEqual([
      '/0/actions/0/name',
      '/0/actions/0/produces/1',
      '/0/actions/1/produces',
      '/0/actions/1/title',
      '/0/adapter',
      '/0/code',
      '/0/lookups/0',
    ]);
  });

  it('reports a duplicate action, leaving the agency out', () => {
    const parsed = parseAgencies(`
- code: kommun
  name: { sv: Kommunen, en: The municipality }
  adapter: mock
  actions:
    - { name: notify, title: { sv: a, en: b }, produces: [] }
    - { name: notify, title: { sv: a, en: b }, produces: [] }
  lookups: []
`);
    expect(parsed.agencies).toEqual([]);
    expect(parsed.problems).toEqual([
      { path: '/0/actions/1/name', message: 'duplicate action notify' },
    ]);
  });

  it('reads the earlier adapter name http as external', () => {
    const parsed = parseAgencies(AGENCY.replace('adapter: mock', 'adapter: http'));
    expect(parsed.problems).toEqual([]);
    expect(parsed.agencies[0]?.adapter).toBe('external');
  });

  it('reports a duplicate code, keeping the first', () => {
    const parsed = parseAgencies(`
- { code: kommun, name: { sv: Kommunen, en: The municipality }, adapter: mock, actions: [], lookups: [] }
- { code: kommun, name: { sv: Kommunen, en: The municipality }, adapter: external, actions: [], lookups: [] }
`);
    expect(parsed.agencies.map((a) => a.adapter)).toEqual(['mock']);
    expect(parsed.problems).toEqual([
      { path: '/1/code', message: 'duplicate agency code kommun (first at /0)' },
    ]);
  });
});

describe('checkCatalogue', () => {
  const facts = parseFactCatalogue(`
- key: person.nickname
  label: { sv: a, en: b }
  sensitivity: personal
  source: lookup:skatteverket
  schema: { type: string }
- key: person.shoeSize
  label: { sv: a, en: b }
  sensitivity: personal
  source: lookup:skoverket
  schema: { type: integer }
- key: business.fTaxStatus
  label: { sv: a, en: b }
  sensitivity: public
  source: produced
  schema: { type: string }
- key: business.orphan
  label: { sv: a, en: b }
  sensitivity: public
  source: produced
  schema: { type: string }
- key: business.name
  label: { sv: a, en: b }
  sensitivity: public
  source: citizen
  schema: { type: string }
`).facts;

  it('accepts a consistent catalogue', () => {
    const agencies = parseAgencies(AGENCY).agencies;
    const consistent = facts.filter(
      (f) => f.key === 'person.nickname' || f.key === 'business.fTaxStatus',
    );
    expect(checkCatalogue(consistent, agencies)).toEqual([]);
  });

  it('reports each inconsistency with its path', () => {
    const agencies = parseAgencies(`
- code: skatteverket
  name: { sv: Skatteverket, en: Swedish Tax Agency }
  adapter: mock
  actions:
    - name: register-f-tax
      title: { sv: F-skatt, en: F-tax }
      produces: [business.fTaxStatus, business.vatNumber, business.name]
  lookups: [business.fTaxStatus, person.unknown]
`).agencies;
    expect(checkCatalogue(facts, agencies)).toEqual([
      {
        path: '/facts/0/source',
        message: 'agency skatteverket does not list person.nickname among its lookups',
      },
      { path: '/facts/1/source', message: 'unknown agency skoverket' },
      {
        path: '/agencies/0/lookups/0',
        message: 'business.fTaxStatus has source produced, not lookup:skatteverket',
      },
      { path: '/agencies/0/lookups/1', message: 'unknown fact person.unknown' },
      { path: '/agencies/0/actions/0/produces/1', message: 'unknown fact business.vatNumber' },
      {
        path: '/agencies/0/actions/0/produces/2',
        message:
          'business.name has source citizen; only facts with source produced can be produced by an action',
      },
      { path: '/facts/3/source', message: 'no agency action produces business.orphan' },
    ]);
  });

  it('lets a produced fact wait for its producer when asked to (an edit one entry at a time)', () => {
    const agencies = parseAgencies(AGENCY).agencies;
    const withOrphan = facts.filter((f) =>
      ['person.nickname', 'business.fTaxStatus', 'business.orphan'].includes(f.key),
    );
    expect(checkCatalogue(withOrphan, agencies)).toEqual([
      { path: '/facts/2/source', message: 'no agency action produces business.orphan' },
    ]);
    expect(checkCatalogue(withOrphan, agencies, { requireProducers: false })).toEqual([]);
  });
});

describe('an agency of many parties (instances)', () => {
  const KOMMUN = (instances: string, extra = '') => `
- code: kommun
  name: { sv: Kommunen, en: The municipality }
  adapter: mock
  actions: []
  lookups: []
  instances:
${instances}
${extra}`;

  it('reads its routing format and onboarded instances, each with an optional adapter', () => {
    const parsed = parseAgencies(
      KOMMUN(`    routedBy: kommunkod
    onboarded:
      - { id: '0180', name: { sv: Stockholms stad, en: City of Stockholm } }
      - { id: '1480', name: { sv: Göteborgs stad, en: City of Gothenburg }, adapter: external }`),
    );
    expect(parsed.problems).toEqual([]);
    expect(parsed.agencies[0]?.instances).toEqual({
      routedBy: 'kommunkod',
      onboarded: [
        { id: '0180', name: { sv: 'Stockholms stad', en: 'City of Stockholm' } },
        {
          id: '1480',
          name: { sv: 'Göteborgs stad', en: 'City of Gothenburg' },
          adapter: 'external',
        },
      ],
    });
  });

  it('reports each problem of its instances with its path, and leaves the agency out', () => {
    const parsed = parseAgencies(
      KOMMUN(`    routedBy: postcode
    onboarded:
      - { id: '0180', name: { sv: a, en: b } }
      - { id: '0180', name: { sv: c, en: d } }
      - { id: 'Kommun 1', name: { sv: e, en: f }, adapter: http2 }
      - { name: { sv: g, en: h }, colour: blue }`),
    );
    expect(parsed.agencies).toEqual([]);
    expect(parsed.problems.map((p) => `${p.path}: ${p.message}`)).toEqual([
      expect.stringMatching(
        /^\/0\/instances\/routedBy: must be one of leo's fact formats: .*kommunkod/,
      ),
      '/0/instances/onboarded/1/id: duplicate id 0180 (first at 0)',
      '/0/instances/onboarded/2/id: must be the routing value: lower-case letters and digits (0180)',
      '/0/instances/onboarded/2/adapter: must be one of mock, external',
      '/0/instances/onboarded/3/colour: is not a known property',
      '/0/instances/onboarded/3/id: is required',
    ]);
  });

  it('may not be a source of look-ups, nor make an agency code taken or invalid', () => {
    const agencies = parseAgencies(`
- code: kommun
  name: { sv: Kommunen, en: The municipality }
  adapter: mock
  actions: []
  lookups: [person.nickname]
  instances:
    routedBy: kommunkod
    onboarded:
      - { id: '0180', name: { sv: a, en: b } }
      - { id: '1480', name: { sv: a, en: b } }
- code: kommuner-och-regioner
  name: { sv: Kommuner och regioner, en: Municipalities and regions }
  adapter: mock
  actions: []
  lookups: []
  instances:
    routedBy: kommunkod
    onboarded:
      - { id: 'abcdefghijklmnop', name: { sv: a, en: b } }
- code: kommun-1480
  name: { sv: Göteborg, en: Gothenburg }
  adapter: mock
  actions: []
  lookups: []
`).agencies;
    const facts = parseFactCatalogue(`
- key: person.nickname
  label: { sv: a, en: b }
  sensitivity: personal
  source: lookup:kommun
  schema: { type: string }
`).facts;
    expect(checkCatalogue(facts, agencies).map((p) => `${p.path}: ${p.message}`)).toEqual([
      '/agencies/0/lookups: kommun is many agencies (instances), which cannot be the source of look-ups: use []',
      '/agencies/0/instances/onboarded/1/id: makes the agency code kommun-1480, which another agency has',
      expect.stringMatching(
        /^\/agencies\/1\/instances\/onboarded\/0\/id: makes the agency code kommuner-och-regioner-abcdefghijklmnop, which is not/,
      ),
    ]);
  });

  it('is how the seed catalogue has the municipalities', () => {
    const kommun = seedAgencies.agencies.find((a) => a.code === 'kommun');
    expect(kommun?.instances?.routedBy).toBe('kommunkod');
    expect(kommun?.instances?.onboarded.map((i) => i.id)).toContain('0180');
  });
});
