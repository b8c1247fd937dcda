/** The token of an `Authorization: Bearer <token>` header (RFC 6750 syntax), or undefined. */
export function bearerToken(header: unknown): string | undefined {
  if (typeof header !== 'string') return undefined;
  return /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(header.trim())?.[1];
}
