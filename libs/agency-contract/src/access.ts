/**
 * What an agency's credential may do in Redis (decision 0022): its own queue's keys, appending to
 * its own results stream, and the commands a BullMQ worker needs for that. Nothing else: not
 * another agency's queue, not another results stream, not reading its own results stream back,
 * not a key outside its queue, no administration. Pure: leo turns it into `ACL SETUSER`, and an
 * adapter's operator can read here what the adapter is allowed.
 */
import { createHash } from 'node:crypto';
import { AGENCY_CODE_PATTERN, agencyQueueName, agencyResultsStreamKey } from './queues.js';

/**
 * The commands of an agency's credential, after its key patterns, in this order (a later rule
 * overrides an earlier one: `+info` before `-@dangerous` would be dropped again):
 * - reading and writing commands, which the key patterns confine to the agency's queue. A BullMQ
 *   worker runs its work in Lua scripts (EVALSHA, EVAL as ioredis' fallback), and Redis checks
 *   every command and every key a script touches against the user, so the scripts need these
 *   commands and can reach nothing beyond the patterns either. Named by category rather than one
 *   by one, so that a BullMQ upgrade whose scripts use another command keeps working;
 * - minus what no adapter needs and would reach beyond its keys: `@dangerous` (administration,
 *   KEYS, FLUSHALL, CONFIG, DEBUG, CLIENT KILL …), `@scripting` (FUNCTION, SCRIPT FLUSH: server
 *   wide), SCAN, RANDOMKEY and DBSIZE (they take no key, so no pattern limits them: they would
 *   list every key's name), and MOVE and COPY (they would write keys of its naming into another
 *   database);
 * - plus the scripts, INFO (BullMQ's version check: without it the worker spins) and the
 *   connection's name.
 */
export const AGENCY_COMMAND_RULES: readonly string[] = [
  '+@read',
  '+@write',
  '-@dangerous',
  '-@scripting',
  '-scan',
  '-randomkey',
  '-dbsize',
  '-move',
  '-copy',
  '+eval',
  '+evalsha',
  '+info',
  '+client|setname',
];

/**
 * The start of the Redis user names of one leo installation's agency credentials:
 * `leo-agency.<scope>.`, the scope being the first 8 hex digits of the SHA-256 of its queue
 * prefix and Redis database. Installations (or test runs) sharing a Redis under different
 * prefixes or databases never take each other's users for their own.
 */
export function agencyUserScope(prefix: string, db = 0): string {
  const scope = createHash('sha256')
    .update(`${prefix}\u0000${String(db)}`)
    .digest('hex');
  return `leo-agency.${scope.slice(0, 8)}.`;
}

/** The Redis user name of credential `id` (12 hex digits) of `agency`: `<scope><code>.<id>`. */
export function agencyUserName(prefix: string, agency: string, id: string, db = 0): string {
  agencyQueueName(agency);
  if (!/^[0-9a-f]{12}$/.test(id)) throw new Error('a credential id is 12 hex digits');
  return `${agencyUserScope(prefix, db)}${agency}.${id}`;
}

/**
 * The agency a user name of this installation's belongs to, or undefined when `name` is not one
 * (an agency code holds no '.').
 */
export function agencyOfUserName(prefix: string, name: string, db = 0): string | undefined {
  const scope = agencyUserScope(prefix, db);
  if (!name.startsWith(scope)) return undefined;
  const [agency, id, ...rest] = name.slice(scope.length).split('.');
  return agency !== undefined &&
    AGENCY_CODE_PATTERN.test(agency) &&
    id !== undefined &&
    /^[0-9a-f]{12}$/.test(id) &&
    rest.length === 0
    ? agency
    : undefined;
}

/**
 * The `ACL SETUSER` rules (after the user name) of a credential of `agency` whose password's
 * SHA-256 is `passwordSha256` (hex): leo never holds the password itself after issuing it.
 * `reset` first, so applying them again (after a Redis restart, or to correct a user edited by
 * hand) gives exactly this user. The results stream is reached through a selector (Redis 7) that
 * allows XADD on it and nothing else: not reading it back or deleting from it (XADD's own MAXLEN
 * can trim it, which loses only the agency's own unread answers: the reconciler asks again).
 * On a Redis database other than 0, the user may SELECT that one database and no other.
 */
export function agencyAclRules(
  prefix: string,
  agency: string,
  passwordSha256: string,
  db = 0,
): string[] {
  if (!/^[0-9a-f]{64}$/.test(passwordSha256)) throw new Error('a SHA-256 is 64 hex digits');
  return [
    'reset',
    'on',
    `#${passwordSha256}`,
    'resetchannels',
    `~${globEscape(`${prefix}:${agencyQueueName(agency)}:`)}*`,
    ...AGENCY_COMMAND_RULES,
    ...(db === 0 ? [] : [`+select|${String(db)}`]),
    `(+xadd %W~${globEscape(agencyResultsStreamKey(prefix, agency))})`,
  ];
}

/** A literal for a Redis glob pattern: `*`, `?`, `[`, `]` and `\` escaped. */
export function globEscape(literal: string): string {
  return literal.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
