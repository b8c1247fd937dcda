/**
 * Telling database errors apart: what the problem filter (a client's bad input becomes a 4xx)
 * and the log serializer (their messages are scrubbed of values) both need. Here rather than in
 * observability/ or database/ because common/ imports neither (see eslint.config.js).
 */

const SAFE_TYPE = /^[A-Za-z_$][\w$]{0,63}$/;
const SQLSTATE = /^[0-9A-Z]{5}$/;

type Fields = Record<string, unknown>;

const isObject = (value: unknown): value is Fields => typeof value === 'object' && value !== null;

/**
 * An error's type as a short identifier: its class name, else its `name` or `type` field, else
 * `Error`. Never anything longer or stranger, so it is safe to write to a log.
 */
export function errorTypeName(error: object): string {
  const fields = error as Fields;
  const ctor = fields.constructor;
  const candidates = [
    typeof ctor === 'function' && ctor !== Object ? ctor.name : undefined,
    fields.name,
    fields.type,
  ];
  const name = candidates.find((c): c is string => typeof c === 'string' && SAFE_TYPE.test(c));
  return name ?? 'Error';
}

/**
 * The SQLSTATE of a database error (a TypeORM QueryFailedError, which copies the driver error's
 * fields onto itself, or a `pg` DatabaseError), or undefined when the error is not one.
 */
export function sqlStateOf(error: unknown): string | undefined {
  if (!isObject(error)) return undefined;
  const driver = error.driverError;
  const fromDriver = isObject(driver) ? driver.code : undefined;
  if (typeof fromDriver === 'string' && SQLSTATE.test(fromDriver)) return fromDriver;
  const code = error.code;
  if (typeof code !== 'string' || !SQLSTATE.test(code)) return undefined;
  // pg's DatabaseError always carries the server's severity and routine with the code.
  return 'severity' in error || 'routine' in error || isDatabaseErrorName(error) ? code : undefined;
}

function isDatabaseErrorName(error: object): boolean {
  const name = errorTypeName(error);
  return name === 'QueryFailedError' || name === 'DatabaseError';
}

/** A TypeORM or `pg` error: by its type's name, a wrapped driver error, or a SQLSTATE. */
export function isDatabaseError(error: object): boolean {
  return isDatabaseErrorName(error) || 'driverError' in error || sqlStateOf(error) !== undefined;
}

/** SQLSTATEs that mean the database cannot serve now, whatever was asked of it. */
const UNAVAILABLE_STATES = new Set([
  '53300', // too many connections
  '55000', // the database does not accept connections now (ALLOW_CONNECTIONS false)
  '57P01', // admin shutdown
  '57P02', // crash shutdown
  '57P03', // cannot connect now (starting up, shutting down)
]);
/** Socket errors of a connection to the database, as Node or the driver names them. */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
]);
const UNAVAILABLE_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error',
];

/**
 * Whether an error says the database is unreachable or refusing work for now (down, restarting,
 * out of connections) rather than that a statement failed: a fault to answer 503, and retry.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!isObject(error)) return false;
  const state = sqlStateOf(error);
  if (state !== undefined) return state.startsWith('08') || UNAVAILABLE_STATES.has(state);
  const driver = isObject(error.driverError) ? error.driverError : error;
  const code = driver.code;
  if (typeof code === 'string' && UNAVAILABLE_CODES.has(code)) return true;
  const message = driver.message;
  return typeof message === 'string' && UNAVAILABLE_MESSAGES.some((m) => message.includes(m));
}
