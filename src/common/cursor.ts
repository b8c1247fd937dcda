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

export function decodeCursor(cursor: string, idPattern: RegExp): CursorPosition | undefined {
  const [at, id, extra] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const time = new Date(at ?? '');
  if (extra !== undefined || !id || !idPattern.test(id) || Number.isNaN(time.getTime())) {
    return undefined;
  }
  return { at: time, id };
}

export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const BIGINT_ID_PATTERN = /^[1-9]\d{0,17}$/;
