import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 16 * 256;
const pool = Buffer.alloc(POOL_BYTES);
let offset = POOL_BYTES;

/**
 * A UUID of version 7 (RFC 9562, section 5.7): 48 bits of Unix time in milliseconds, then 74
 * random bits. The ids leo mints for the rows it writes (cases, step runs, look-ups, fact records)
 * are of this kind so that new rows land at the right-hand edge of their primary-key and
 * `(case_id, …)` indexes, in pages already in memory, instead of on a random leaf of an index
 * that, with a large stored history, is mostly not (decision 0012). Random bits come from a
 * pooled buffer, as `crypto.randomUUID` does it.
 */
export function uuidv7(now: number = Date.now()): string {
  if (offset + 16 > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const bytes = Buffer.from(pool.subarray(offset, offset + 16));
  offset += 16;
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x70;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
