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
