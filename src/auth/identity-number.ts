import { createRequire } from 'node:module';
import type * as PersonnummerModule from 'personnummer';

type PersonnummerClass = typeof PersonnummerModule.default.default;

// The package is CommonJS with `module.exports = Personnummer` but types declaring a default
// export; requiring it gives the class under both module systems.
const Personnummer = createRequire(import.meta.url)('personnummer') as PersonnummerClass;

/**
 * Swedish personal identity numbers (and coordination numbers) through the `personnummer`
 * package, the validator the Swedish open-source community maintains against a shared test list.
 * Returns the 12-digit form (YYYYMMDDNNNC), or undefined when invalid.
 */
export function normalisePersonalNumber(input: string): string | undefined {
  if (typeof input !== 'string' || input.length > 20) return undefined;
  try {
    const parsed = Personnummer.parse(input, {
      allowCoordinationNumber: true,
      allowInterimNumber: false,
    });
    return parsed.format(true);
  } catch {
    return undefined;
  }
}
