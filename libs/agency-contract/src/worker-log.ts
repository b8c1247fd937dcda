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
