/**
 * A port: whether a user name and password are a standing agency credential, and whose. The
 * agency-access module provides it (auth imports no feature folder); without it, HTTP Basic
 * credentials are refused.
 */
export abstract class AgencyCredentialCheck {
  /** The agency of the standing credential `username`/`password`, or undefined. */
  abstract agencyOf(username: string, password: string): Promise<string | undefined>;
}

/**
 * The user name and password of an `Authorization: Basic <base64>` header (RFC 7617), or
 * undefined when the header is not one.
 */
export function basicCredentials(
  header: unknown,
): { username: string; password: string } | undefined {
  if (typeof header !== 'string') return undefined;
  const encoded = /^Basic ([A-Za-z0-9+/]+=*)$/i.exec(header.trim())?.[1];
  if (!encoded || encoded.length > 512) return undefined;
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
