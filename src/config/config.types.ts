/**
 * The shapes of leo's configuration (what config.schema.ts reads from the environment and
 * validates): the roles, environments and log levels, and the typed configuration every other
 * part of leo receives.
 */

export const ROLES = ['all', 'api', 'engine', 'adapters'] as const;
export type Role = (typeof ROLES)[number];

export const NODE_ENVS = ['development', 'test', 'production'] as const;
export type NodeEnv = (typeof NODE_ENVS)[number];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface OidcConfig {
  issuer: string;
  audience: string;
  jwksUrl: string;
}

export interface AppConfig {
  nodeEnv: NodeEnv;
  role: Role;
  http: { host: string; port: number };
  /** Absent: `npm start` runs an embedded Postgres (never in production). */
  database: { url: string | undefined; poolSize: number };
  /** Absent: `npm start` spawns redis-server (never in production). */
  redis: { url: string | undefined };
  queue: { prefix: string };
  dataDir: string;
  logLevel: LogLevel;
  shutdownTimeoutMs: number;
  /** How long readiness reports 503 before the process stops taking work (load balancers notice). */
  shutdownDrainMs: number;
  auth: {
    oidc: OidcConfig | undefined;
    claims: { roles: string; agency: string; personalNumber: string };
    devTokens: boolean;
    devSecret: string | undefined;
    devTokenTtlSeconds: number;
  };
  /** The engine role's housekeeping. */
  engine: EngineConfig;
  /** The mock agencies' behaviour (see src/adapters). */
  mockAgencies: MockAgenciesConfig;
}

export interface EngineConfig {
  /** How often outbox rows the fast path missed are published. */
  outboxSweepIntervalMs: number;
  /** How often unanswered steps and look-ups are re-dispatched and overdue steps escalated. */
  reconcileIntervalMs: number;
  /** Jobs waiting unpicked on an agency's queue this long are an alert: no adapter serves it. */
  agencyPickupAlertMs: number;
  /** How long a step or look-up may go unanswered before it is re-dispatched. */
  reconcileAfterMs: number;
  /** Results one engine process applies at once (their reads and writes are batched). */
  resultConcurrency: number;
  /** Cases a process keeps in memory after changing them (0: none; decision 0019). */
  caseCacheSize: number;
  /** How long an engine's lease on a partition lasts unrenewed (renewed every third of it). */
  partitionLeaseMs: number;
  /** How long a command forwarded to a case's owner waits for its answer before a 503. */
  commandTimeoutMs: number;
  /** How long a step stays open before its deadline timer is written (0: at dispatch). */
  timerArmAfterMs: number;
}

export interface MockAgenciesConfig {
  /** Simulated latency before each answer. */
  latencyMs: number;
  /** Fraction (0–1) of attempts answered `retryable-error` `unavailable` before doing anything. */
  failureRate: number;
  /** How long a decision takes after a `pending` answer; 0: decide at once (no `pending`). */
  decisionDelayMs: number;
  /** Fraction (0–1) of refusable decisions (e.g. an alcohol licence) that are refusals. */
  rejectionRate: number;
}

/** A configuration whose infrastructure URLs have been resolved (given, or embedded started). */
export type ResolvedConfig = AppConfig & {
  database: { url: string; poolSize: number };
  redis: { url: string };
};
