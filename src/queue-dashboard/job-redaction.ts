/** What the dashboard shows in place of a fact value. */
export const REDACTED = '(hidden)';

/**
 * Where job payloads carry fact values: a step job's `facts` (what the agency needs), a result's
 * `produced` (what the agency made), and whatever an adapter returns from its job (it may echo
 * either). Their keys stay visible: which facts travelled is what an operator needs to know.
 */
const FACT_MAPS = new Set(['facts', 'produced']);

const MAX_DEPTH = 8;

/**
 * A job's data or return value as an administrator may see it on the queue dashboard: fact
 * values replaced by {@link REDACTED}, everything else (ids, attempt, action, outcome, codes)
 * as it is. Administrators see no fact values anywhere in leo (the case view has none either);
 * the dashboard must not be the way around that.
 */
export function redactJobPayload(value: unknown, depth = 0): unknown {
  if (depth > MAX_DEPTH) return REDACTED;
  if (Array.isArray(value)) return value.map((item) => redactJobPayload(item, depth + 1));
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([key, inner]) => [
      key,
      FACT_MAPS.has(key) && typeof inner === 'object' && inner !== null
        ? Object.fromEntries(Object.keys(inner).map((factKey) => [factKey, REDACTED]))
        : redactJobPayload(inner, depth + 1),
    ]),
  );
}
