import { describe, expect, it } from '@jest/globals';
import { ConfigError, ENVIRONMENT_VARIABLE_NAMES, loadConfig } from './config.schema.js';

const problemsOf = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  return [];
};

describe('loadConfig', () => {
  it('gives development defaults with embedded infrastructure and dev tokens', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      nodeEnv: 'development',
      role: 'all',
      http: { host: '127.0.0.1', port: 3000 },
      database: { url: undefined, poolSize: 10 },
      redis: { url: undefined },
      queue: { prefix: '{leo}' },
      dataDir: '.data',
    });
    expect(config.auth.devTokens).toBe(true);
  });

  it('turns dev tokens off by default once a real database is configured', () => {
    const problems = problemsOf({ DATABASE_URL: 'postgres://db/leo', REDIS_URL: 'redis://r:6379' });
    expect(problems).toEqual([expect.stringContaining('AUTH_ISSUER: required')]);
  });

  it('converts and validates numbers and booleans', () => {
    const config = loadConfig({ PORT: '8080', DATABASE_POOL_SIZE: '20', AUTH_DEV_TOKENS: 'yes' });
    expect(config.http.port).toBe(8080);
    expect(config.database.poolSize).toBe(20);
    expect(config.auth.devTokens).toBe(true);
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['LEO_ROLE', 'worker'],
    ['NODE_ENV', 'staging'],
    ['DATABASE_URL', 'mysql://x/y'],
    ['REDIS_URL', 'http://x'],
    ['QUEUE_PREFIX', 'leo'],
    ['AUTH_DEV_TOKENS', 'maybe'],
    ['AUTH_DEV_SECRET', 'short'],
    ['LOG_LEVEL', 'loud'],
    ['DATABASE_POOL_SIZE', '0'],
  ])('refuses %s=%s, naming the variable', (name, value) => {
    const problems = problemsOf({ AUTH_DEV_TOKENS: 'true', [name]: value });
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.every((p) => p.startsWith(`${name}: `))).toBe(true);
  });

  it('never echoes a secret in its message', () => {
    const problems = problemsOf({ AUTH_DEV_SECRET: 'hunter2' });
    expect(problems).toEqual([expect.stringMatching(/^AUTH_DEV_SECRET: /)]);
    expect(problems.join('\n')).not.toContain('hunter2');
  });

  it.each([
    [
      'DATABASE_URL',
      'mysql://leo:hunter2@db.example:3306/leo',
      '"mysql://leo:***@db.example:3306/leo"',
    ],
    ['DATABASE_URL', 'leo:hunter2@db.example/leo', '"leo:***@db.example/leo"'],
    // Written without percent-encoding, a password may hold `/`, `:` and `@`.
    ['DATABASE_URL', 'mysql://leo:hun/t:e@r2@db.example/leo', '"mysql://leo:***@db.example/leo"'],
    ['DATABASE_URL', 'mysql://db.example/leo?user=leo&password=hunter2', 'password=***'],
    ['REDIS_URL', 'http://:hunter2@cache.example:6379', '"http://:***@cache.example:6379"'],
    [
      'REDIS_URL',
      'tcp://default:hunter2@cache.example:6379/0',
      '"tcp://default:***@cache.example:6379/0"',
    ],
  ])('never echoes the password of %s=%s, but shows the rest', (name, value, shown) => {
    const problems = problemsOf({ AUTH_DEV_TOKENS: 'true', [name]: value });
    expect(problems).toEqual([expect.stringMatching(new RegExp(`^${name}: `))]);
    expect(problems.join('\n')).not.toContain('hunter2');
    expect(problems[0]).toContain(shown);
  });

  it('never echoes the credentials of a URL given to another variable', () => {
    const problems = problemsOf({
      AUTH_ISSUER: 'ftp://admin:hunter2@idp.example',
      AUTH_AUDIENCE: 'leo',
      AUTH_JWKS_URL: 'https://idp.example/jwks',
    });
    expect(problems).toEqual([expect.stringMatching(/^AUTH_ISSUER: /)]);
    expect(problems.join('\n')).not.toContain('hunter2');
  });

  it('reports every problem at once', () => {
    const problems = problemsOf({ PORT: 'x', LEO_ROLE: 'y', LOG_LEVEL: 'z' });
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual(['LEO_ROLE', 'LOG_LEVEL', 'PORT']);
  });

  it('flags an unknown variable with one of our prefixes (a typo would otherwise be ignored)', () => {
    expect(problemsOf({ LEO_ROEL: 'api' })).toEqual([
      expect.stringMatching(/^LEO_ROEL: unknown variable/),
    ]);
  });

  it('requires DATABASE_URL and REDIS_URL and refuses dev tokens in production', () => {
    const problems = problemsOf({ NODE_ENV: 'production', AUTH_DEV_TOKENS: 'true' });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^DATABASE_URL: required/),
        expect.stringMatching(/^REDIS_URL: required/),
        expect.stringMatching(/^AUTH_DEV_TOKENS: must not be enabled/),
      ]),
    );
  });

  it('accepts a complete production configuration', () => {
    const config = loadConfig({
      NODE_ENV: 'production',
      LEO_ROLE: 'engine',
      DATABASE_URL: 'postgresql://leo@db:5432/leo',
      REDIS_URL: 'rediss://cache:6380/2',
      AUTH_ISSUER: 'https://idp.example.se',
      AUTH_AUDIENCE: 'leo',
      AUTH_JWKS_URL: 'https://idp.example.se/jwks',
    });
    expect(config.auth.devTokens).toBe(false);
    expect(config.auth.oidc).toEqual({
      issuer: 'https://idp.example.se',
      audience: 'leo',
      jwksUrl: 'https://idp.example.se/jwks',
    });
    expect(config.role).toBe('engine');
  });

  it.each(['AUTH_ISSUER', 'AUTH_JWKS_URL'])('refuses a plain-http %s in production', (name) => {
    const env: Record<string, string> = {
      NODE_ENV: 'production',
      DATABASE_URL: 'postgresql://leo@db:5432/leo',
      REDIS_URL: 'rediss://cache:6380/2',
      AUTH_ISSUER: 'https://idp.example.se',
      AUTH_AUDIENCE: 'leo',
      AUTH_JWKS_URL: 'https://idp.example.se/jwks',
    };
    env[name] = 'http://idp.example.se/x';
    expect(problemsOf(env)).toEqual([`${name}: must be an https:// URL when NODE_ENV=production`]);
    // Development and tests may use a local identity provider over http.
    expect(problemsOf({ ...env, NODE_ENV: 'test', AUTH_DEV_TOKENS: 'false' })).toEqual([]);
  });

  it('wants all three OpenID Connect settings or none', () => {
    const problems = problemsOf({ AUTH_ISSUER: 'https://idp.example.se' });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^AUTH_AUDIENCE: required/),
        expect.stringMatching(/^AUTH_JWKS_URL: required/),
      ]),
    );
  });

  it('knows every variable it validates', () => {
    expect(new Set(ENVIRONMENT_VARIABLE_NAMES).size).toBe(ENVIRONMENT_VARIABLE_NAMES.length);
  });
});
