import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import {
  ConfigError,
  ENVIRONMENT_VARIABLE_NAMES,
  loadConfig,
} from '../src/config/config.schema.js';

/**
 * The Dockerfile and docker-compose.yml are configuration too: nothing else would notice a
 * misspelt variable, a value the schema refuses or a service waiting on the wrong thing until
 * someone runs the stack. Docker is not needed: both files are read as text.
 */

type Env = Record<string, string>;
type Mapping = Record<string, unknown>;

const repoFile = (name: string): string =>
  readFileSync(new URL(`../${name}`, import.meta.url), 'utf8');

const isMapping = (value: unknown): value is Mapping =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function mapping(value: unknown, what: string): Mapping {
  if (!isMapping(value)) throw new Error(`${what} is not a mapping (got ${JSON.stringify(value)})`);
  return value;
}

const known = new Set(ENVIRONMENT_VARIABLE_NAMES);

/** Names that are leo's by their shape, whether or not the schema knows them. */
const looksLikeOurs = (name: string): boolean =>
  known.has(name) ||
  ['NODE_ENV', 'HOST', 'PORT'].includes(name) ||
  /^(LEO|AUTH|DATABASE|QUEUE|REDIS|LOG|SHUTDOWN)_/.test(name);

function problemsOf(env: Env): string[] {
  try {
    loadConfig(env);
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Dockerfile

interface Instruction {
  keyword: string;
  args: string;
}

interface Stage {
  from: string;
  instructions: Instruction[];
}

/** Splits a Dockerfile into stages of instructions, joining continuation lines. */
function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    // Docker drops comment lines, also in the middle of a continued instruction.
    if (line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const joined = (pending + line).trim();
    pending = '';
    if (joined !== '') logical.push(joined);
  }
  const stages: Stage[] = [];
  for (const line of logical) {
    const match = /^(\S+)\s*(.*)$/s.exec(line);
    if (!match) continue;
    const keyword = (match[1] ?? '').toUpperCase();
    const args = match[2] ?? '';
    if (keyword === 'FROM') stages.push({ from: args, instructions: [] });
    else stages.at(-1)?.instructions.push({ keyword, args });
  }
  return stages;
}

/** The variables of an ENV instruction, in both `A=b C="d e"` and legacy `A b` forms. */
function envOf(args: string): Env {
  const env: Env = {};
  if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(args)) {
    const legacy = /^(\S+)\s+(.*)$/.exec(args);
    if (legacy?.[1]) env[legacy[1]] = legacy[2] ?? '';
    return env;
  }
  for (const pair of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g)) {
    const [, name, value = ''] = pair;
    if (name) env[name] = /^["']/.test(value) ? value.slice(1, -1) : value;
  }
  return env;
}

const stages = parseDockerfile(repoFile('Dockerfile'));
const runtime = stages.at(-1);
const runtimeInstructions = (keyword: string): Instruction[] =>
  runtime?.instructions.filter((i) => i.keyword === keyword) ?? [];
/** What the image sets for every container started from it (compose adds to and overrides it). */
const imageEnv: Env = Object.assign(
  {},
  ...runtimeInstructions('ENV').map((i) => envOf(i.args)),
) as Env;

describe('Dockerfile', () => {
  it('is multi-stage, so build tools and dev dependencies stay out of the image', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
  });

  it('checks liveness with node itself', () => {
    const [healthcheck, ...more] = runtimeInstructions('HEALTHCHECK');
    expect(more).toEqual([]);
    expect(healthcheck?.args).toMatch(/\bCMD\b/);
    expect(healthcheck?.args).toContain('/health/live');
    expect(healthcheck?.args).toMatch(/["\s]node["\s]/);
  });

  it('runs as a non-root user', () => {
    const user = runtimeInstructions('USER').at(-1)?.args.trim();
    expect(user).toBeDefined();
    expect(['root', '0', '0:0', 'root:root']).not.toContain(user);
  });

  it('starts the built entry point directly with node, so SIGTERM reaches leo', () => {
    const cmd = runtimeInstructions('CMD').at(-1)?.args ?? '';
    const argv: unknown = JSON.parse(cmd);
    expect(Array.isArray(argv)).toBe(true);
    expect((argv as unknown[])[0]).toBe('node');
    expect(argv).toContain('dist/src/main.js');
    expect(runtimeInstructions('STOPSIGNAL').at(-1)?.args).toBe('SIGTERM');
  });

  it('sets only variables leo knows', () => {
    const all = stages.flatMap((s) =>
      s.instructions.filter((i) => i.keyword === 'ENV').map((i) => envOf(i.args)),
    );
    const names = all.flatMap((env) => Object.keys(env));
    expect(names.length).toBeGreaterThan(0);
    expect(names.filter(looksLikeOurs).filter((n) => !known.has(n))).toEqual([]);
    // Without HOST leo listens on 127.0.0.1, which nothing outside the container can reach.
    expect(imageEnv).toMatchObject({ NODE_ENV: 'production', HOST: '0.0.0.0', PORT: '3000' });
  });
});

// ---------------------------------------------------------------------------------------------
// docker-compose.yml

const composeText = repoFile('docker-compose.yml');
const compose = mapping(parse(composeText, { merge: true }) as unknown, 'docker-compose.yml');
const services = mapping(compose.services, 'services');
const service = (name: string): Mapping => mapping(services[name], `service ${name}`);
const leoServices = Object.keys(services).filter((name) => service(name).build !== undefined);
const ROLE_SERVICES = ['api', 'engine', 'adapters'];

/** A service's environment as written (mapping or `KEY=value` list), values not yet checked. */
function rawEnvironment(name: string): Record<string, unknown> {
  const environment = service(name).environment;
  if (Array.isArray(environment)) {
    return Object.fromEntries(
      environment.map((entry) => {
        const text = String(entry);
        const eq = text.indexOf('=');
        return eq < 0 ? [text, undefined] : [text.slice(0, eq), text.slice(eq + 1)];
      }),
    );
  }
  return environment === undefined ? {} : mapping(environment, `${name}.environment`);
}

function environment(name: string): Env {
  const env: Env = {};
  for (const [key, value] of Object.entries(rawEnvironment(name))) {
    if (typeof value === 'string') env[key] = value;
  }
  return env;
}

/** What the container really sees: the image's ENV, overridden by the service's environment. */
const effectiveEnv = (name: string): Env => ({ ...imageEnv, ...environment(name) });

function durationMs(value: unknown): number {
  const match = /^(\d+)(ms|s|m)$/.exec(String(value));
  if (!match) throw new Error(`not a duration: ${JSON.stringify(value)}`);
  return Number(match[1]) * ({ ms: 1, s: 1_000, m: 60_000 } as const)[match[2] as 'ms' | 's' | 'm'];
}

describe('docker-compose.yml', () => {
  it('uses the Compose Specification (no obsolete version key)', () => {
    expect(compose).not.toHaveProperty('version');
  });

  it('builds exactly the three leo roles from the Dockerfile', () => {
    expect([...leoServices].sort()).toEqual([...ROLE_SERVICES].sort());
  });

  it('writes every environment value as a string', () => {
    const notStrings: string[] = [];
    for (const name of Object.keys(services)) {
      for (const [key, value] of Object.entries(rawEnvironment(name))) {
        if (typeof value !== 'string') notStrings.push(`${name}.${key}: ${JSON.stringify(value)}`);
      }
    }
    expect(notStrings).toEqual([]);
  });

  it('gives every leo service an environment the configuration schema accepts', () => {
    const problems: Record<string, string[]> = {};
    for (const name of leoServices) {
      const found = problemsOf(effectiveEnv(name));
      if (found.length > 0) problems[name] = found;
    }
    expect(problems).toEqual({});
  });

  it('sets only variables leo knows', () => {
    const unknown = leoServices.flatMap((name) =>
      Object.keys(rawEnvironment(name))
        .filter((key) => !known.has(key))
        .map((key) => `${name}.${key}`),
    );
    expect(unknown).toEqual([]);
  });

  it.each(ROLE_SERVICES)('runs %s in its own role, reachable from the other containers', (name) => {
    expect(environment(name).LEO_ROLE).toBe(name);
    const config = loadConfig(effectiveEnv(name));
    expect(config.role).toBe(name);
    expect(config.http.host).toBe('0.0.0.0');
  });

  it('points DATABASE_URL and REDIS_URL at services of this file', () => {
    for (const name of leoServices) {
      const env = environment(name);
      for (const variable of ['DATABASE_URL', 'REDIS_URL'] as const) {
        const url = env[variable];
        expect(url).toBeDefined();
        const host = new URL(url ?? '').hostname;
        expect({ service: name, variable, host, exists: host in services }).toEqual({
          service: name,
          variable,
          host,
          exists: true,
        });
      }
    }
  });

  it('health-checks Postgres and Redis, and starts leo only once both are healthy', () => {
    for (const dependency of ['postgres', 'redis']) {
      const healthcheck = mapping(service(dependency).healthcheck, `${dependency}.healthcheck`);
      expect(healthcheck.test).toBeDefined();
      expect(healthcheck.disable).not.toBe(true);
    }
    expect(JSON.stringify(service('postgres').healthcheck)).toContain('pg_isready');
    expect(JSON.stringify(service('redis').healthcheck)).toContain('redis-cli');
    for (const name of leoServices) {
      const dependsOn = mapping(service(name).depends_on, `${name}.depends_on`);
      for (const dependency of ['postgres', 'redis']) {
        expect({
          service: name,
          dependency,
          condition: mapping(dependsOn[dependency], dependency).condition,
        }).toEqual({
          service: name,
          dependency,
          condition: 'service_healthy',
        });
      }
    }
  });

  it('health-checks every leo role on /health/live', () => {
    for (const name of leoServices) {
      const healthcheck = mapping(service(name).healthcheck, `${name}.healthcheck`);
      expect(JSON.stringify(healthcheck.test)).toContain('/health/live');
    }
  });

  it('runs Redis with the append-only file on a volume, so queued jobs survive a restart', () => {
    const redis = service('redis');
    const command = Array.isArray(redis.command)
      ? redis.command.map(String).join(' ')
      : String(redis.command);
    expect(command).toMatch(/--appendonly\s+yes/);
    expect(JSON.stringify(redis.volumes)).toMatch(/:\/data"/);
  });

  it('publishes only the api, and Postgres and Redis on loopback only', () => {
    const published = Object.keys(services).filter((name) => service(name).ports !== undefined);
    expect(published.sort()).toEqual(['api', 'postgres', 'redis']);
    for (const name of ['postgres', 'redis']) {
      const ports = service(name).ports;
      expect(Array.isArray(ports) && ports.length > 0).toBe(true);
      for (const port of ports as unknown[]) expect(String(port)).toMatch(/^127\.0\.0\.1:/);
    }
    const containerPort = String(loadConfig(effectiveEnv('api')).http.port);
    expect((service('api').ports as unknown[]).map((p) => String(p).split(':').at(-1))).toContain(
      containerPort,
    );
  });

  it('gives leo more time to stop than its own shutdown timeout', () => {
    for (const name of leoServices) {
      const grace = durationMs(service(name).stop_grace_period ?? '10s');
      expect({
        service: name,
        graceMs: grace,
        longer: grace > loadConfig(effectiveEnv(name)).shutdownTimeoutMs,
      }).toEqual({ service: name, graceMs: grace, longer: true });
    }
  });
});
