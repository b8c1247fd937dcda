import type { CookieOptions } from 'express';
import { QUEUE_DASHBOARD_PATH } from './queue-board.js';

/** The cookie holding a dashboard session id. */
export const SESSION_COOKIE = 'leo_queue_dashboard';

/** Long enough to look into an incident, short enough that a forgotten tab stops working. */
export const SESSION_SECONDS = 15 * 60;

/**
 * Sent only to the dashboard's own path, never readable by scripts, never on a cross-site
 * request, and in production only over TLS.
 */
export function sessionCookieOptions(secure: boolean): CookieOptions {
  return { path: QUEUE_DASHBOARD_PATH, httpOnly: true, sameSite: 'strict', secure };
}

/** The value of one cookie in a Cookie header, or undefined. */
export function cookieValue(header: unknown, name: string): string | undefined {
  if (typeof header !== 'string') return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
