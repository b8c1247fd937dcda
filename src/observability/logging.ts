import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Params } from 'nestjs-pino';
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { errorTypeName, isDatabaseError, sqlStateOf } from '../common/database-error.js';
import type { LogLevel } from '../config/config.schema.js';

const REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/**
 * Keys whose values are removed from every log line wherever pino's redaction can reach them:
 * at the top level of a log object (and of child-logger bindings) and in nested objects and
 * arrays down to {@link REDACT_DEPTH} levels below it.
 *
 * Limits, since redaction matches paths rather than scanning: key names match exactly (case
 * sensitive: `personalNumber`, not `personnummer` or `PersonalNumber`); values nested deeper
 * than {@link REDACT_DEPTH} levels are not reached; and values inside strings (a message, an
 * error text) are never inspected. Personal data is therefore kept out of log calls in the first
 * place (pseudonymous ids only, see docs/decisions/0006-errors-and-logs.md); this is the net.
 */
export const REDACTED_KEYS = [
  'personalNumber',
  'password',
  'authorization',
  'accessToken',
] as const;

/** How many levels below the top of a log object redaction reaches (`*.*.*.*.personalNumber`). */
export const REDACT_DEPTH = 4;

/** The redaction paths: whole headers, and every {@link REDACTED_KEYS} key at depths 0–N. */
export function redactPaths(): string[] {
  const paths = ['req.headers', 'res.headers'];
  for (let depth = 0; depth <= REDACT_DEPTH; depth += 1) {
    for (const key of REDACTED_KEYS) paths.push([...Array<string>(depth).fill('*'), key].join('.'));
  }
  return paths;
}

/** What an error becomes in a log line: an allow-list, nothing else of the error is written. */
export interface LoggedError {
  type: string;
  message: string;
  /** A short symbolic code: leo's DomainError code, a Node code (`ECONNREFUSED`), a SQLSTATE. */
  code?: string;
  stack?: string;
  cause?: LoggedError;
}

const SAFE_CODE = /^[A-Za-z0-9_.:-]{1,64}$/;
const MAX_MESSAGE = 500;
const MAX_CAUSE_DEPTH = 3;

type Fields = Record<string, unknown>;

const isObject = (value: unknown): value is Fields => typeof value === 'object' && value !== null;

/** An Error of any realm (Jest runs tests in their own, `instanceof Error` misses those). */
const isError = (value: unknown): value is Error & Fields =>
  value instanceof Error || Object.prototype.toString.call(value) === '[object Error]';

/**
 * A database message with everything that could be a value taken out. Postgres quotes the
 * offending input (`invalid input syntax for type uuid: "199012119948"`, `value "…" is out of
 * range`), shows bytes in hex (`invalid byte sequence for encoding "UTF8": 0x00`), and the
 * driver may add lines; so: the first line only, every quoted fragment (double or single quotes,
 * an unterminated one to the end), hex literals and runs of six or more digits replaced.
 */
export function scrubMessage(message: string): string {
  const firstLine = message.split(/\r?\n/, 1)[0] ?? '';
  return firstLine
    .slice(0, MAX_MESSAGE)
    .replace(/"[^"]*(?:"|$)/g, '"…"')
    .replace(/'[^']*(?:'|$)/g, "'…'")
    .replace(/\b0x[0-9A-Fa-f]+/g, '0x…')
    .replace(/\d{6,}/g, '…');
}

/**
 * pino-http wraps custom serializers: they receive pino-std-serializers' copy of the error (every
 * enumerable field), which keeps the original as an inherited, non-enumerable `raw`.
 */
function unwrap(value: unknown): unknown {
  if (
    isObject(value) &&
    !isError(value) &&
    Object.getOwnPropertyDescriptor(value, 'raw') === undefined &&
    isObject(value.raw)
  ) {
    return value.raw;
  }
  return value;
}

function serialize(value: unknown, depth: number): LoggedError {
  const error = unwrap(value);
  if (!isObject(error)) {
    // A thrown string or number: its text is someone's message, kept but bounded and scrubbed.
    return { type: typeof error, message: scrubMessage(String(error)) };
  }
  const type = errorTypeName(error);
  const database = isDatabaseError(error);
  const rawMessage = typeof error.message === 'string' ? error.message : '';
  // JSON.parse errors quote the text they failed on; database errors quote values.
  const message =
    database || type === 'SyntaxError'
      ? scrubMessage(rawMessage)
      : rawMessage.slice(0, MAX_MESSAGE);
  const logged: LoggedError = { type, message };

  const code = database ? sqlStateOf(error) : error.code;
  if (typeof code === 'string' && SAFE_CODE.test(code)) logged.code = code;
  else if (typeof code === 'number' && Number.isFinite(code)) logged.code = String(code);

  if (typeof error.stack === 'string') {
    // The stack's first line repeats the message; for errors whose message was scrubbed only
    // the frames are kept, under the scrubbed header.
    logged.stack =
      message === rawMessage
        ? error.stack
        : [
            `${type}: ${message}`,
            ...error.stack.split('\n').filter((line) => /^\s+at /.test(line)),
          ].join('\n');
  }
  if (depth < MAX_CAUSE_DEPTH && error.cause !== undefined && error.cause !== null) {
    logged.cause = serialize(error.cause, depth + 1);
  }
  return logged;
}

/**
 * The `err` serializer of every logger: an allow-list (type, message, code, stack, cause),
 * so nothing an error carries besides reaches the logs. A TypeORM QueryFailedError carries the
 * SQL `query`, its bound `parameters` (request bodies, personal identity numbers) and the
 * driver's `detail`/`where` (`Key (personal_number)=(…)`): none of them is written; its code is
 * the SQLSTATE and its message is scrubbed of values ({@link scrubMessage}).
 */
export function serializeError(value: unknown): LoggedError {
  return serialize(value, 0);
}

/**
 * A message for a log call that gave none: pino would take the error's own message, unscrubbed.
 */
function withSafeMessage(args: unknown[]): [object, string] | undefined {
  const [first, second] = args;
  if (!isObject(first) || (args.length > 1 && second !== undefined)) return undefined;
  if (isError(first)) return [{ err: first }, serializeError(first).message];
  if (first.err === undefined || first.err === null || first.msg !== undefined) return undefined;
  return [first, serializeError(first.err).message];
}

/** How many values of one log object {@link serializeNestedErrors} looks at, at most. */
const ERROR_SEARCH_BUDGET = 1_000;

/**
 * Errors logged under another key than `err` (`{ error }`, `{ context: { cause } }`) would be
 * written by JSON.stringify with every enumerable field: they get the same allow-list, down to
 * {@link REDACT_DEPTH} levels (and {@link ERROR_SEARCH_BUDGET} values) of plain objects and
 * arrays. The log object is copied only along the way to an error, never changed.
 */
export function serializeNestedErrors(object: Record<string, unknown>): Record<string, unknown> {
  const budget = { left: ERROR_SEARCH_BUDGET };
  const visit = (value: unknown, depth: number): unknown => {
    budget.left -= 1;
    if (isError(value)) return serializeError(value);
    if (depth > REDACT_DEPTH || budget.left <= 0 || !isObject(value)) return value;
    if (Array.isArray(value)) {
      let copy: unknown[] | undefined;
      value.forEach((item: unknown, index) => {
        const visited = visit(item, depth + 1);
        if (visited !== item) (copy ??= [...value])[index] = visited;
      });
      return copy ?? value;
    }
    const prototype: unknown = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== null) return value;
    let copy: Record<string, unknown> | undefined;
    for (const [key, item] of Object.entries(value)) {
      // `err` has its own serializer at the top level.
      if (depth === 0 && key === 'err') continue;
      const visited = visit(item, depth + 1);
      if (visited !== item) (copy ??= { ...value })[key] = visited;
    }
    return copy ?? value;
  };
  return visit(object, 0) as Record<string, unknown>;
}

/**
 * One JSON log format for the whole process: level as a word, ISO time, service and role on
 * every line. Nothing personal is logged: no bodies, no query strings (they may carry
 * identifiers), no headers (authorization, cookies), errors only through the allow-list of
 * {@link serializeError}, and the keys of {@link REDACTED_KEYS} removed wherever pino reaches.
 */
export function pinoOptions(level: LogLevel, role: string): LoggerOptions {
  return {
    level,
    base: { service: 'leo', role },
    messageKey: 'msg',
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }), log: serializeNestedErrors },
    serializers: { err: serializeError },
    hooks: {
      // Given an error and no message, pino would use the error's own message, unscrubbed.
      logMethod(args, method) {
        const safe = withSafeMessage(args);
        if (safe) method.apply(this, safe);
        else method.apply(this, args);
      },
    },
    redact: { paths: redactPaths(), remove: true },
  };
}

/** The process's root logger; a destination stream other than stdout is for tests. */
export function createRootLogger(
  level: LogLevel,
  role: string,
  destination?: DestinationStream,
): Logger {
  return destination ? pino(pinoOptions(level, role), destination) : pino(pinoOptions(level, role));
}

/** nestjs-pino parameters: HTTP request logs with a request id, sharing the root logger. */
export function loggerParams(logger: Logger): Params {
  return {
    pinoHttp: {
      logger,
      genReqId: (req: IncomingMessage, res: ServerResponse) => {
        const given = req.headers['x-request-id'];
        const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
        res.setHeader('x-request-id', id);
        return id;
      },
      autoLogging: { ignore: (req: IncomingMessage) => (req.url ?? '').startsWith('/health') },
      customLogLevel: (_req, res, error) =>
        error || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
      serializers: {
        req: (req: IncomingMessage & { id?: unknown }) => ({
          id: req.id,
          method: req.method,
          path: (req.url ?? '').split('?')[0],
        }),
        res: (res: ServerResponse) => ({ statusCode: res.statusCode }),
        // pino-http's child logger (the one nestjs-pino logs through during a request) would
        // otherwise replace the root logger's allow-list with pino's standard error serializer,
        // which writes every enumerable field of an error.
        err: serializeError,
      },
    },
  };
}
