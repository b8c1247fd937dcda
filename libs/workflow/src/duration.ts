/** An ISO 8601 duration's components, e.g. `P1Y2M` → years 1, months 2, the rest 0. */
export interface IsoDuration {
  years: number;
  months: number;
  weeks: number;
  days: number;
  hours: number;
  minutes: number;
  seconds: number;
}

const NUMBER = String.raw`(\d+(?:[.,]\d+)?)`;
// ISO 8601 basic durations: PnW alone, or PnYnMnDTnHnMnS with at least one component and a T only
// before a time component. No sign and no surrounding space: a deadline is a wire value.
const DURATION = new RegExp(
  `^P(?:${NUMBER}W|(?=\\d|T\\d)(?:${NUMBER}Y)?(?:${NUMBER}M)?(?:${NUMBER}D)?` +
    `(?:T(?=\\d)(?:${NUMBER}H)?(?:${NUMBER}M)?(?:${NUMBER}S)?)?)$`,
);
const UNITS = ['weeks', 'years', 'months', 'days', 'hours', 'minutes', 'seconds'] as const;

/** The components of an ISO 8601 duration, or undefined when the text is not one. */
export function parseIsoDuration(text: string): IsoDuration | undefined {
  const match = DURATION.exec(text);
  if (match === null) return undefined;
  const duration: IsoDuration = {
    years: 0,
    months: 0,
    weeks: 0,
    days: 0,
    hours: 0,
    minutes: 0,
    seconds: 0,
  };
  let fractionSeen = false;
  for (const [index, unit] of UNITS.entries()) {
    const raw = match[index + 1];
    if (raw === undefined) continue;
    // ISO 8601 allows a decimal fraction on the smallest component given only.
    if (fractionSeen) return undefined;
    fractionSeen = /[.,]/.test(raw);
    duration[unit] = Number(raw.replace(',', '.'));
  }
  return duration;
}

const SECOND = 1000;
const DAY = 86_400 * SECOND;

/**
 * Milliseconds with nominal calendar units (a month is 30 days, a year 365): for checking ranges,
 * not for computing a due date, which must use the calendar.
 */
export function nominalDurationMs(duration: IsoDuration): number {
  return (
    duration.years * 365 * DAY +
    duration.months * 30 * DAY +
    duration.weeks * 7 * DAY +
    duration.days * DAY +
    duration.hours * 3600 * SECOND +
    duration.minutes * 60 * SECOND +
    duration.seconds * SECOND
  );
}
