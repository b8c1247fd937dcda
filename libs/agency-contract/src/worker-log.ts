/** The SDK worker's logging: a structured logger, a default one, and what may be logged of an error. */

/** A structured logger (pino's signature: fields first, then the message). Never log fact values. */
export interface AgencyWorkerLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

/** Logs to stderr as JSON lines, warnings and errors only. */
export const stderrLogger: AgencyWorkerLogger = {
  info: () => undefined,
  warn: (fields, message) => {
    process.stderr.write(`${JSON.stringify({ level: 'warn', ...fields, msg: message })}\n`);
  },
  error: (fields, message) => {
    process.stderr.write(`${JSON.stringify({ level: 'error', ...fields, msg: message })}\n`);
  },
};

export function bind(log: AgencyWorkerLogger, bound: Record<string, unknown>): AgencyWorkerLogger {
  return {
    info: (fields, message) => {
      log.info({ ...bound, ...fields }, message);
    },
    warn: (fields, message) => {
      log.warn({ ...bound, ...fields }, message);
    },
    error: (fields, message) => {
      log.error({ ...bound, ...fields }, message);
    },
  };
}

/**
 * What may be logged of an error thrown by a handler: its name, a `code` if it has one, and
 * the stack without its first line. The message is left out: it may quote a fact value.
 */
export function describeHandlerError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { errorType: typeof error };
  const code = (error as { code?: unknown }).code;
  const frames = (error.stack ?? '').split('\n').filter((line) => /^\s+at /.test(line));
  return {
    errorName: error.name,
    ...(typeof code === 'string' || typeof code === 'number' ? { errorCode: code } : {}),
    ...(frames.length > 0 ? { stack: frames.slice(0, 10).join('\n') } : {}),
  };
}

/** A Redis fault the worker meets, by what its operator should do about it. */
export type RedisFault = 'refused' | 'credential' | 'unreachable';

/**
 * What kind of Redis fault `error` is, or undefined for anything else. These come from Redis or
 * the network, never from a handler, so their messages carry no fact and may be logged.
 * - `refused`: Redis refuses the credential a command or key the worker needs (an ACL);
 * - `credential`: Redis refuses the user name and password (wrong, revoked, or not yet restored
 *   by leo after a Redis restart);
 * - `unreachable`: no connection to Redis.
 */
export function redisFault(error: Error): RedisFault | undefined {
  const text = error.message;
  if (/^NOPERM\b/.test(text) || /can't access|can't run this command/.test(text)) return 'refused';
  if (/^(WRONGPASS|NOAUTH)\b/.test(text) || /invalid username-password/.test(text)) {
    return 'credential';
  }
  const code = (error as { code?: unknown }).code;
  if (
    (typeof code === 'string' &&
      /^(ECONNREFUSED|ENOTFOUND|ETIMEDOUT|ECONNRESET|EAI_AGAIN)$/.test(code)) ||
    /^(connect ECONNREFUSED|getaddrinfo|Connection is closed)/.test(text)
  ) {
    return 'unreachable';
  }
  return undefined;
}
