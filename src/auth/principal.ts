/** Who is calling. Every route declares which of these may call it (see access.decorator.ts). */
export const PRINCIPAL_ROLES = ['citizen', 'admin', 'agency'] as const;
export type PrincipalRole = (typeof PRINCIPAL_ROLES)[number];

export interface CitizenPrincipal {
  role: 'citizen';
  /** The token's `sub`: stable per person at the issuer. */
  subject: string;
  /** The person's identity number in 12-digit form (YYYYMMDDNNNC). Sensitive: never log it. */
  personalNumber: string;
}

export interface AdminPrincipal {
  role: 'admin';
  subject: string;
}

export interface AgencyPrincipal {
  role: 'agency';
  subject: string;
  /** The one agency this caller acts for, e.g. `skatteverket`. */
  agency: string;
}

export type Principal = CitizenPrincipal | AdminPrincipal | AgencyPrincipal;
