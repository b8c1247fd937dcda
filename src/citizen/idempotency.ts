import { createHash } from 'node:crypto';
import { canonicalJson } from '#workflow';
import { DomainError } from '../common/domain-error.js';

/**
 * `Idempotency-Key` on case creation (the IETF draft "The Idempotency-Key HTTP Header Field"):
 * a retry with the same key and the same request is answered with the case the first one made;
 * the same key with another request is refused. Pure: the digests and the case id a key makes.
 */

/** A key: 1 to 255 visible ASCII characters, optionally as a quoted string (`"…"`). */
const KEY = /^[\x21-\x7e]{1,255}$/;

/** The key of a request, or undefined when it has none; a key that is not one is a 400. */
export function idempotencyKeyOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const key = /^"(.*)"$/.exec(header)?.[1] ?? header;
  if (!KEY.test(key) || key.includes('"')) {
    throw new DomainError('invalid', 'validation-failed', 'The Idempotency-Key is not valid.', [
      {
        path: 'Idempotency-Key',
        reason: 'must be 1 to 255 visible ASCII characters, optionally in double quotes',
      },
    ]);
  }
  return key;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** What is kept of a key: its digest (the key itself is the client's text). */
export const keyDigest = (key: string): string => sha256(`idempotency-key\u0000${key}`);

/** The digest of a creation request: the same life event and answers make the same digest. */
export const requestDigest = (request: {
  lifeEvent: string;
  answers: Record<string, unknown>;
}): string => sha256(canonicalJson({ lifeEvent: request.lifeEvent, answers: request.answers }));

/**
 * The id of the case a citizen's key makes: derived from the subject and the key (a UUID of
 * version 8), so that every attempt with the key names the same case, and the database's
 * primary key lets only one of them make it.
 */
export function caseIdForKey(subjectId: string, digest: string): string {
  const hex = sha256(`case\u0000${subjectId}\u0000${digest}`).slice(0, 32).split('');
  hex[12] = '8';
  hex[16] = ((parseInt(hex[16] ?? '0', 16) & 0x3) | 0x8).toString(16);
  const h = hex.join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
