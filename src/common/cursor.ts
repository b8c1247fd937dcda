/**
 * Keyset cursors: the (time, id) of the last item of a page, opaque to clients. A cursor that
 * does not decode is refused by the caller as a 400, never passed to the database.
 */
export interface CursorPosition {
  at: Date;
  id: string;
}

export function encodeCursor(position: { at: Date; id: string }): string {
  return Buffer.from(`${position.at.toISOString()}|${position.id}`).toString('base64url');
}

/**
 * The times a cursor may hold: from 1970 to 9999. A JavaScript date reaches far further (to
 * 271821 BC), and Postgres refuses a timestamp before 4713 BC with an error, not an empty page.
 */
const EARLIEST = Date.UTC(1970, 0, 1);
const LATEST = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

export function decodeCursor(cursor: string, idPattern: RegExp): CursorPosition | undefined {
  const [at, id, extra] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const time = new Date(at ?? '');
  const ms = time.getTime();
  if (extra !== undefined || !id || !idPattern.test(id) || !(ms >= EARLIEST && ms <= LATEST)) {
    return undefined;
  }
  return { at: time, id };
}

export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const BIGINT_ID_PATTERN = /^[1-9]\d{0,17}$/;
