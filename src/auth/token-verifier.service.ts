import { createHash, createSecretKey, type KeyObject } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import {
  SignJWT,
  createRemoteJWKSet,
  decodeJwt,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import { AGENCY_CODE_PATTERN } from '#agency-contract';
import type { ResolvedConfig } from '../config/config.schema.js';
import { DomainError } from '../common/domain-error.js';
import { normalisePersonalNumber } from './identity-number.js';
import { PRINCIPAL_ROLES, type Principal, type PrincipalRole } from './principal.js';

/** The issuer and audience of the tokens leo signs itself when dev tokens are enabled. */
export const DEV_ISSUER = 'urn:leo:dev';
export const DEV_AUDIENCE = 'leo';

/** Asymmetric algorithms accepted from an OpenID Connect issuer; never `none` or HMAC. */
const OIDC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'EdDSA',
];

/** The oldest OIDC token (by `iat`) leo accepts, whatever its `exp` says. */
const OIDC_MAX_TOKEN_AGE = '12h';
const OIDC_MAX_TOKEN_AGE_SECONDS = 12 * 3_600;
/** Verified tokens remembered at most this many, for at most this long. */
const VERIFIED_CACHE_SIZE = 10_000;
const VERIFIED_CACHE_TTL_MS = 5 * 60_000;

/** How long leo waits for the identity provider's keys before answering 503. */
const JWKS_TIMEOUT_MS = 5_000;

const unauthenticated = (message: string): DomainError =>
  new DomainError('unauthenticated', 'invalid-token', message);

/**
 * The identity provider's keys, fetched and cached by `jose`, with its failures told apart: a
 * token naming no published key is the token's fault (401), but an identity provider that does
 * not answer, answers an error or answers garbage is not the caller's: 503, so clients retry and
 * monitoring sees an outage rather than a wave of refused sign-ins.
 */
function remoteKeys(url: URL): JWTVerifyGetKey {
  const jwks = createRemoteJWKSet(url, { timeoutDuration: JWKS_TIMEOUT_MS });
  return async (header, token) => {
    try {
      return await jwks(header, token);
    } catch (error) {
      if (
        error instanceof joseErrors.JWKSNoMatchingKey ||
        error instanceof joseErrors.JWKSMultipleMatchingKeys ||
        error instanceof joseErrors.JOSENotSupported
      ) {
        throw error;
      }
      // A network error (refused, DNS, reset), JWKSTimeout, a non-200 answer or a malformed set.
      throw new DomainError(
        'unavailable',
        'identity-provider-unavailable',
        'The identity provider cannot be reached to verify the bearer token; try again shortly.',
        [],
        { cause: error },
      );
    }
  };
}

/** Whether a subject spells out the identity number, in its 12- or 10-digit form. */
function subjectRevealsNumber(subject: string, personalNumber: string): boolean {
  const digits = subject.replace(/\D/g, '');
  return digits.includes(personalNumber) || digits.includes(personalNumber.slice(2));
}

/**
 * Verifies bearer tokens and turns their claims into a Principal. In production the tokens come
 * from an external OpenID Connect issuer (its keys fetched from the JWKS URL and cached by
 * `jose`); for development and tests leo can sign its own (HS256, see DevTokenController).
 */
@Injectable()
export class TokenVerifier {
  private readonly auth: ResolvedConfig['auth'];
  private readonly jwks: JWTVerifyGetKey | undefined;
  /** A key object made once: jose would import a raw secret again on every verification. */
  private readonly devKey: KeyObject | undefined;

  constructor(config: ConfigService<ResolvedConfig, true>) {
    this.auth = config.get('auth', { infer: true });
    this.jwks = this.auth.oidc ? remoteKeys(new URL(this.auth.oidc.jwksUrl)) : undefined;
    this.devKey =
      this.auth.devTokens && this.auth.devSecret
        ? createSecretKey(Buffer.from(this.auth.devSecret, 'utf8'))
        : undefined;
  }

  /**
   * Verified tokens, by a digest of the token (never the token itself), until the earlier of
   * their expiry and a few minutes: a front-end sends the same token with every request, and
   * checking a signature costs more than the rest of a small request.
   */
  private readonly verified = new Map<string, { principal: Principal; until: number }>();

  async verify(token: string): Promise<Principal> {
    const digest = createHash('sha256').update(token).digest('base64url');
    const hit = this.verified.get(digest);
    if (hit && hit.until > Date.now()) return hit.principal;
    if (hit) this.verified.delete(digest);
    const { principal, until } = await this.verifyAfresh(token);
    if (this.verified.size >= VERIFIED_CACHE_SIZE) {
      // The oldest entries first (a Map keeps insertion order).
      for (const key of [...this.verified.keys()].slice(0, VERIFIED_CACHE_SIZE / 10)) {
        this.verified.delete(key);
      }
    }
    this.verified.set(digest, { principal, until });
    return principal;
  }

  private async verifyAfresh(token: string): Promise<{ principal: Principal; until: number }> {
    let issuer: unknown;
    try {
      issuer = decodeJwt(token).iss;
    } catch {
      throw unauthenticated('The bearer token is not a well-formed JWT.');
    }
    let payload: JWTPayload;
    try {
      if (issuer === DEV_ISSUER && this.devKey) {
        ({ payload } = await jwtVerify(token, this.devKey, {
          issuer: DEV_ISSUER,
          audience: DEV_AUDIENCE,
          algorithms: ['HS256'],
          requiredClaims: ['exp', 'iat'],
          maxTokenAge: this.auth.devTokenTtlSeconds,
        }));
      } else if (this.auth.oidc && this.jwks && issuer === this.auth.oidc.issuer) {
        ({ payload } = await jwtVerify(token, this.jwks, {
          issuer: this.auth.oidc.issuer,
          audience: this.auth.oidc.audience,
          algorithms: OIDC_ALGORITHMS,
          // jose checks `exp` only when present: a token without it would never expire.
          requiredClaims: ['exp', 'iat'],
          maxTokenAge: OIDC_MAX_TOKEN_AGE,
          clockTolerance: 30,
        }));
      } else {
        throw unauthenticated('The bearer token is from an issuer leo does not trust.');
      }
    } catch (error) {
      if (error instanceof DomainError) throw error;
      if (error instanceof joseErrors.JWTExpired)
        throw unauthenticated('The bearer token has expired.');
      if (error instanceof joseErrors.JWTClaimValidationFailed) {
        // `claim` is the registered claim's name (iss, aud, exp, iat, …), never its value.
        throw unauthenticated(
          `The bearer token was refused: its "${error.claim}" claim is ${error.reason === 'missing' ? 'missing' : 'not acceptable'}.`,
        );
      }
      if (error instanceof joseErrors.JOSEError) {
        throw unauthenticated(`The bearer token was refused (${error.code}).`);
      }
      throw error;
    }
    const principal = this.toPrincipal(payload);
    const expires = typeof payload.exp === 'number' ? payload.exp * 1000 : Date.now();
    const maxAge =
      issuer === DEV_ISSUER ? this.auth.devTokenTtlSeconds : OIDC_MAX_TOKEN_AGE_SECONDS;
    const tooOld = typeof payload.iat === 'number' ? (payload.iat + maxAge) * 1000 : Date.now();
    return { principal, until: Math.min(expires, tooOld, Date.now() + VERIFIED_CACHE_TTL_MS) };
  }

  private toPrincipal(payload: JWTPayload): Principal {
    const subject = payload.sub;
    if (typeof subject !== 'string' || subject.length === 0) {
      throw unauthenticated('The bearer token has no subject.');
    }
    const claimed = payload[this.auth.claims.roles];
    // Strict: a list, each entry a role leo knows. A bare string or a role beside leo's is a
    // token made for something else (or by mistake), refused rather than read generously.
    const roles = Array.isArray(claimed) ? (claimed as unknown[]) : [];
    const known = roles.every(
      (r) => typeof r === 'string' && (PRINCIPAL_ROLES as readonly string[]).includes(r),
    );
    // A token speaks for one kind of caller; one carrying several is refused rather than guessed.
    if (!known || roles.length !== 1) {
      throw new DomainError(
        'forbidden',
        'no-role',
        `The bearer token must carry exactly one of the roles ${PRINCIPAL_ROLES.join(', ')} in claim ${this.auth.claims.roles}.`,
      );
    }
    const role = roles[0] as PrincipalRole;
    switch (role) {
      case 'citizen': {
        const raw = payload[this.auth.claims.personalNumber];
        const personalNumber = typeof raw === 'string' ? normalisePersonalNumber(raw) : undefined;
        if (!personalNumber) {
          throw unauthenticated('The citizen token carries no valid personal identity number.');
        }
        // Subjects are stored and may be logged; identity numbers must be neither.
        if (subjectRevealsNumber(subject, personalNumber)) {
          throw unauthenticated(
            "The citizen token's subject contains the personal identity number; leo needs a subject that does not reveal it (a pairwise or random identifier).",
          );
        }
        return { role, subject, personalNumber };
      }
      case 'agency': {
        const agency = payload[this.auth.claims.agency];
        if (typeof agency !== 'string' || !AGENCY_CODE_PATTERN.test(agency)) {
          throw unauthenticated('The agency token names no valid agency.');
        }
        return { role, subject, agency };
      }
      case 'admin':
        return { role, subject };
    }
  }

  /** Signs a development token. Only reachable when AUTH_DEV_TOKENS is on. */
  async signDevToken(principal: Principal): Promise<{ accessToken: string; expiresIn: number }> {
    if (!this.devKey)
      throw new DomainError('not-found', 'dev-tokens-disabled', 'Dev tokens are disabled.');
    if (
      principal.role === 'citizen' &&
      subjectRevealsNumber(principal.subject, principal.personalNumber)
    ) {
      throw new DomainError(
        'invalid',
        'validation-failed',
        'The request has 1 invalid field: subject.',
        [
          {
            path: 'subject',
            reason: 'subject must not contain the personal identity number',
            code: 'subject',
          },
        ],
      );
    }
    const claims: JWTPayload = { [this.auth.claims.roles]: [principal.role] };
    if (principal.role === 'citizen')
      claims[this.auth.claims.personalNumber] = principal.personalNumber;
    if (principal.role === 'agency') claims[this.auth.claims.agency] = principal.agency;
    const expiresIn = this.auth.devTokenTtlSeconds;
    const accessToken = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(DEV_ISSUER)
      .setAudience(DEV_AUDIENCE)
      .setSubject(principal.subject)
      .setIssuedAt()
      .setExpirationTime(`${expiresIn}s`)
      .setJti(crypto.randomUUID())
      .sign(this.devKey);
    return { accessToken, expiresIn };
  }
}
