import 'reflect-metadata';
import { Transform, plainToInstance } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsNumber,
  IsOptional,
  IsString,
  IsUrl,
  Matches,
  Max,
  MaxLength,
  Min,
  MinLength,
  ValidationError,
  validateSync,
} from 'class-validator';
import {
  LOG_LEVELS,
  NODE_ENVS,
  ROLES,
  type AppConfig,
  type LogLevel,
  type NodeEnv,
  type Role,
} from './config.types.js';

/**
 * The one place that reads environment variables. Everything else receives the typed
 * {@link AppConfig} built here (through @nestjs/config's ConfigService or as a plain object).
 *
 * Each variable is documented by its decorators and by the configuration reference in the
 * README; `test/readme.spec.ts` checks the two agree.
 */

export {
  LOG_LEVELS,
  NODE_ENVS,
  ROLES,
  type AppConfig,
  type EngineConfig,
  type LogLevel,
  type MockAgenciesConfig,
  type NodeEnv,
  type OidcConfig,
  type ResolvedConfig,
  type Role,
} from './config.types.js';

const toBoolean = ({ value }: { value: unknown }): unknown => {
  if (typeof value !== 'string') return value;
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  return value; // left as a string so @IsBoolean reports it
};

const toInt = ({ value }: { value: unknown }): unknown => {
  if (typeof value !== 'string' || !/^-?\d+$/.test(value.trim())) return value;
  return Number.parseInt(value, 10);
};

const toNumber = ({ value }: { value: unknown }): unknown => {
  if (typeof value !== 'string' || !/^(?:\d+(?:\.\d*)?|\.\d+)$/.test(value.trim())) return value;
  return Number(value);
};

const emptyToUndefined = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' && value.trim() === '' ? undefined : value;

/** Thirty days: a demo can keep a decision pending for weeks, never for ever. */
const MAX_MOCK_DECISION_DELAY_MS = 30 * 24 * 3_600_000;

export class EnvironmentVariables {
  @IsOptional()
  @IsIn(NODE_ENVS)
  NODE_ENV?: NodeEnv;

  @IsOptional()
  @IsIn(ROLES)
  LEO_ROLE?: Role;

  @IsOptional()
  @Transform(toInt)
  @Min(0)
  @Max(65535)
  @IsInt()
  PORT?: number;

  @IsOptional()
  @IsString()
  @MinLength(1)
  HOST?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^postgres(ql)?:\/\/.+/, { message: 'must be a postgres:// or postgresql:// URL' })
  DATABASE_URL?: string;

  @IsOptional()
  @Transform(toInt)
  @Min(1)
  @Max(200)
  @IsInt()
  DATABASE_POOL_SIZE?: number;

  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^rediss?:\/\/.+/, { message: 'must be a redis:// or rediss:// URL' })
  REDIS_URL?: string;

  @IsOptional()
  @Matches(/^[A-Za-z0-9_.:-]*\{[A-Za-z0-9_.:-]+\}[A-Za-z0-9_.:-]*$/, {
    message:
      'must contain one Redis Cluster hash tag in braces, e.g. {leo}, so all keys of a queue share a slot',
  })
  @MaxLength(64)
  QUEUE_PREFIX?: string;

  @IsOptional()
  @IsString()
  @MinLength(1)
  LEO_DATA_DIR?: string;

  @IsOptional()
  @IsIn(LOG_LEVELS)
  LOG_LEVEL?: LogLevel;

  @IsOptional()
  @Transform(toInt)
  @Min(0)
  @Max(600_000)
  @IsInt()
  SHUTDOWN_TIMEOUT_MS?: number;

  @IsOptional()
  @Transform(toInt)
  @Min(0)
  @Max(300_000)
  @IsInt()
  SHUTDOWN_DRAIN_MS?: number;

  @IsOptional()
  @Transform(emptyToUndefined)
  @IsUrl({ require_tld: false, protocols: ['https', 'http'], require_protocol: true })
  AUTH_ISSUER?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @IsString()
  @MinLength(1)
  AUTH_AUDIENCE?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @IsUrl({ require_tld: false, protocols: ['https', 'http'], require_protocol: true })
  AUTH_JWKS_URL?: string;

  @IsOptional()
  @IsString()
  @MinLength(1)
  AUTH_ROLES_CLAIM?: string;

  @IsOptional()
  @IsString()
  @MinLength(1)
  AUTH_AGENCY_CLAIM?: string;

  @IsOptional()
  @IsString()
  @MinLength(1)
  AUTH_PERSONAL_NUMBER_CLAIM?: string;

  @IsOptional()
  @Transform(toBoolean)
  @IsBoolean()
  AUTH_DEV_TOKENS?: boolean;

  @IsOptional()
  @Transform(emptyToUndefined)
  @IsString()
  @MinLength(32, { message: 'must be at least 32 characters' })
  AUTH_DEV_SECRET?: string;

  @IsOptional()
  @Transform(toInt)
  @Min(60)
  @Max(86_400)
  @IsInt()
  AUTH_DEV_TOKEN_TTL_SECONDS?: number;

  // The engine's housekeeping (role `engine`).

  @IsOptional()
  @Transform(toInt)
  @Min(50)
  @Max(60_000)
  @IsInt()
  LEO_OUTBOX_SWEEP_INTERVAL_MS?: number;

  @IsOptional()
  @Transform(toInt)
  @Min(100)
  @Max(3_600_000)
  @IsInt()
  LEO_RECONCILE_INTERVAL_MS?: number;

  /** Jobs waiting unpicked on an agency's queue this long are an operator alert (no adapter). */
  @IsOptional()
  @Transform(toInt)
  @Min(1_000)
  @Max(86_400_000)
  @IsInt()
  LEO_AGENCY_PICKUP_ALERT_MS?: number;

  @IsOptional()
  @Transform(toInt)
  @Min(100)
  @Max(86_400_000)
  @IsInt()
  LEO_RECONCILE_AFTER_MS?: number;

  @IsOptional()
  @Transform(toInt)
  @Min(1)
  @Max(256)
  @IsInt()
  LEO_RESULT_CONCURRENCY?: number;

  @IsOptional()
  @Transform(toInt)
  @Min(0)
  @Max(100_000)
  @IsInt()
  LEO_CASE_CACHE_SIZE?: number;

  @IsOptional()
  @Transform(toInt)
  @Min(1_000)
  @Max(600_000)
  @IsInt()
  LEO_PARTITION_LEASE_MS?: number;

  @IsOptional()
  @Transform(toInt)
  @Min(100)
  @Max(120_000)
  @IsInt()
  LEO_COMMAND_TIMEOUT_MS?: number;

  @IsOptional()
  @Transform(toInt)
  @Min(0)
  @Max(86_400_000)
  @IsInt()
  LEO_TIMER_ARM_AFTER_MS?: number;

  // The mock agencies (role `adapters`): simulated latency, failures and decisions.

  @IsOptional()
  @Transform(toInt)
  @Min(0)
  @Max(600_000)
  @IsInt()
  MOCK_AGENCY_LATENCY_MS?: number;

  @IsOptional()
  @Transform(toNumber)
  @Min(0)
  @Max(1)
  @IsNumber({ allowNaN: false, allowInfinity: false })
  MOCK_AGENCY_FAILURE_RATE?: number;

  @IsOptional()
  @Transform(toInt)
  @Min(0)
  @Max(MAX_MOCK_DECISION_DELAY_MS)
  @IsInt()
  MOCK_DECISION_DELAY_MS?: number;

  @IsOptional()
  @Transform(toNumber)
  @Min(0)
  @Max(1)
  @IsNumber({ allowNaN: false, allowInfinity: false })
  MOCK_REJECTION_RATE?: number;
}

/** The names of every variable leo reads: used to flag unknown `LEO_`/`AUTH_` names. */
export const ENVIRONMENT_VARIABLE_NAMES: readonly string[] = Object.freeze([
  'NODE_ENV',
  'LEO_ROLE',
  'PORT',
  'HOST',
  'DATABASE_URL',
  'DATABASE_POOL_SIZE',
  'REDIS_URL',
  'QUEUE_PREFIX',
  'LEO_DATA_DIR',
  'LOG_LEVEL',
  'SHUTDOWN_TIMEOUT_MS',
  'SHUTDOWN_DRAIN_MS',
  'AUTH_ISSUER',
  'AUTH_AUDIENCE',
  'AUTH_JWKS_URL',
  'AUTH_ROLES_CLAIM',
  'AUTH_AGENCY_CLAIM',
  'AUTH_PERSONAL_NUMBER_CLAIM',
  'AUTH_DEV_TOKENS',
  'AUTH_DEV_SECRET',
  'AUTH_DEV_TOKEN_TTL_SECONDS',
  'LEO_OUTBOX_SWEEP_INTERVAL_MS',
  'LEO_RECONCILE_INTERVAL_MS',
  'LEO_AGENCY_PICKUP_ALERT_MS',
  'LEO_RECONCILE_AFTER_MS',
  'LEO_RESULT_CONCURRENCY',
  'LEO_CASE_CACHE_SIZE',
  'LEO_PARTITION_LEASE_MS',
  'LEO_COMMAND_TIMEOUT_MS',
  'LEO_TIMER_ARM_AFTER_MS',
  'MOCK_AGENCY_LATENCY_MS',
  'MOCK_AGENCY_FAILURE_RATE',
  'MOCK_DECISION_DELAY_MS',
  'MOCK_REJECTION_RATE',
]);

/** Prefixes that are ours: a variable with one of them that we do not know is a typo. */
const OWN_PREFIXES = ['LEO_', 'AUTH_', 'DATABASE_', 'QUEUE_', 'MOCK_'];

/** A configuration problem, with one line per variable naming it and the reason. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parts of a URL's query string that are credentials (libpq takes `?password=`). */
const CREDENTIAL_PARAMETER = /([?&][^=&#]*(?:pass|pwd|secret|token|key)[^=&#]*=)[^&#]*/gi;

/**
 * A value as a configuration problem may show it: never a secret (`AUTH_*SECRET*`, anything
 * named like a secret or password) and never a URL's credentials: the password of the userinfo
 * (`postgres://leo:***@db/leo`; everything up to the last `@`, since a password written without
 * percent-encoding may itself hold `@`, `/` or `:`) and credential query parameters.
 */
export function shownValue(name: string, value: unknown): string {
  if (/SECRET|PASSWORD/i.test(name)) return '(hidden)';
  if (typeof value !== 'string') return JSON.stringify(value);
  if (!name.endsWith('_URL') && !value.includes('://')) return JSON.stringify(value);
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(value)?.[0] ?? '';
  let masked = value;
  const at = value.lastIndexOf('@');
  if (at >= scheme.length) {
    const user = value.slice(scheme.length, at).split(':', 1)[0] ?? '';
    masked = `${scheme}${user}:***${value.slice(at)}`;
  }
  return JSON.stringify(masked.replace(CREDENTIAL_PARAMETER, '$1***'));
}

function describe(errors: ValidationError[]): string[] {
  return errors.map((e) => {
    const shown = shownValue(e.property, e.value);
    const reasons = Object.values(e.constraints ?? {}).map((r) => r.replace(`${e.property} `, ''));
    return `${e.property}: ${reasons.join('; ')} (got ${shown})`;
  });
}

/**
 * Validates the environment and builds the typed configuration. Throws {@link ConfigError}
 * naming every bad variable; never returns a half-valid configuration.
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>>): AppConfig {
  const known = new Set(ENVIRONMENT_VARIABLE_NAMES);
  const raw: Record<string, string> = {};
  for (const name of ENVIRONMENT_VARIABLE_NAMES) {
    const value = env[name];
    if (value !== undefined) raw[name] = value;
  }
  const vars = plainToInstance(EnvironmentVariables, raw);
  const problems = describe(
    validateSync(vars, { whitelist: true, forbidUnknownValues: true, stopAtFirstError: true }),
  );

  for (const name of Object.keys(env)) {
    if (OWN_PREFIXES.some((p) => name.startsWith(p)) && !known.has(name)) {
      problems.push(`${name}: unknown variable (known: ${[...known].sort().join(', ')})`);
    }
  }

  const nodeEnv = vars.NODE_ENV ?? 'development';
  const production = nodeEnv === 'production';
  const devTokens = vars.AUTH_DEV_TOKENS ?? (!production && vars.DATABASE_URL === undefined);

  if (production) {
    if (!vars.DATABASE_URL) problems.push('DATABASE_URL: required when NODE_ENV=production');
    if (!vars.REDIS_URL) problems.push('REDIS_URL: required when NODE_ENV=production');
    if (devTokens) problems.push('AUTH_DEV_TOKENS: must not be enabled when NODE_ENV=production');
    // Keys fetched, or an issuer named, over plain http could be swapped on the way: anyone could
    // then sign tokens leo accepts. http stays allowed in development and tests (a local JWKS).
    for (const [name, value] of [
      ['AUTH_ISSUER', vars.AUTH_ISSUER],
      ['AUTH_JWKS_URL', vars.AUTH_JWKS_URL],
    ] as const) {
      const alreadyRefused = problems.some((p) => p.startsWith(`${name}: `));
      if (value !== undefined && !alreadyRefused && !/^https:\/\//i.test(value)) {
        problems.push(`${name}: must be an https:// URL when NODE_ENV=production`);
      }
    }
  }

  const oidcParts = [vars.AUTH_ISSUER, vars.AUTH_AUDIENCE, vars.AUTH_JWKS_URL];
  const oidcGiven = oidcParts.filter((p) => p !== undefined).length;
  if (oidcGiven > 0 && oidcGiven < 3) {
    for (const [name, value] of [
      ['AUTH_ISSUER', vars.AUTH_ISSUER],
      ['AUTH_AUDIENCE', vars.AUTH_AUDIENCE],
      ['AUTH_JWKS_URL', vars.AUTH_JWKS_URL],
    ] as const) {
      if (value === undefined) {
        problems.push(
          `${name}: required when any of AUTH_ISSUER, AUTH_AUDIENCE, AUTH_JWKS_URL is set`,
        );
      }
    }
  }
  if (oidcGiven === 0 && !devTokens) {
    problems.push(
      'AUTH_ISSUER: required (with AUTH_AUDIENCE and AUTH_JWKS_URL) unless AUTH_DEV_TOKENS=true: nobody could sign in',
    );
  }

  if (problems.length > 0) throw new ConfigError(problems);

  return {
    nodeEnv,
    role: vars.LEO_ROLE ?? 'all',
    http: { host: vars.HOST ?? '127.0.0.1', port: vars.PORT ?? 3000 },
    database: { url: vars.DATABASE_URL, poolSize: vars.DATABASE_POOL_SIZE ?? 10 },
    redis: { url: vars.REDIS_URL },
    queue: { prefix: vars.QUEUE_PREFIX ?? '{leo}' },
    dataDir: vars.LEO_DATA_DIR ?? '.data',
    logLevel: vars.LOG_LEVEL ?? (nodeEnv === 'test' ? 'warn' : 'info'),
    shutdownTimeoutMs: vars.SHUTDOWN_TIMEOUT_MS ?? 10_000,
    shutdownDrainMs: vars.SHUTDOWN_DRAIN_MS ?? 0,
    auth: {
      oidc:
        oidcGiven === 3
          ? {
              issuer: vars.AUTH_ISSUER as string,
              audience: vars.AUTH_AUDIENCE as string,
              jwksUrl: vars.AUTH_JWKS_URL as string,
            }
          : undefined,
      claims: {
        roles: vars.AUTH_ROLES_CLAIM ?? 'leo_roles',
        agency: vars.AUTH_AGENCY_CLAIM ?? 'leo_agency',
        personalNumber:
          vars.AUTH_PERSONAL_NUMBER_CLAIM ?? 'https://id.oidc.se/claim/personalIdentityNumber',
      },
      devTokens,
      devSecret: vars.AUTH_DEV_SECRET,
      devTokenTtlSeconds: vars.AUTH_DEV_TOKEN_TTL_SECONDS ?? 3600,
    },
    engine: {
      outboxSweepIntervalMs: vars.LEO_OUTBOX_SWEEP_INTERVAL_MS ?? 1_000,
      reconcileIntervalMs: vars.LEO_RECONCILE_INTERVAL_MS ?? 30_000,
      agencyPickupAlertMs: vars.LEO_AGENCY_PICKUP_ALERT_MS ?? 120_000,
      reconcileAfterMs: vars.LEO_RECONCILE_AFTER_MS ?? 300_000,
      resultConcurrency: vars.LEO_RESULT_CONCURRENCY ?? 64,
      caseCacheSize: vars.LEO_CASE_CACHE_SIZE ?? 10_000,
      partitionLeaseMs: vars.LEO_PARTITION_LEASE_MS ?? 5_000,
      commandTimeoutMs: vars.LEO_COMMAND_TIMEOUT_MS ?? 10_000,
      timerArmAfterMs: vars.LEO_TIMER_ARM_AFTER_MS ?? 60_000,
    },
    mockAgencies: {
      latencyMs: vars.MOCK_AGENCY_LATENCY_MS ?? 0,
      failureRate: vars.MOCK_AGENCY_FAILURE_RATE ?? 0,
      decisionDelayMs: vars.MOCK_DECISION_DELAY_MS ?? 2_000,
      rejectionRate: vars.MOCK_REJECTION_RATE ?? 0.1,
    },
  };
}
