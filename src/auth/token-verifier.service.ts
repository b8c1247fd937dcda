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

const unauthenticated = (message: string): DomainError =>
  new DomainError('unauthenticated', 'invalid-token', message);

/**
 * Verifies bearer tokens and turns their claims into a Principal. In production the tokens come
 * from an external OpenID Connect issuer (its keys fetched from the JWKS URL and cached by
 * `jose`); for development and tests leo can sign its own (HS256, see DevTokenController).
 */
@Injectable()
export class TokenVerifier {
  private readonly auth: ResolvedConfig['auth'];
  private readonly jwks: JWTVerifyGetKey | undefined;
  private readonly devKey: Uint8Array | undefined;

  constructor(config: ConfigService<ResolvedConfig, true>) {
    this.auth = config.get('auth', { infer: true });
    this.jwks = this.auth.oidc ? createRemoteJWKSet(new URL(this.auth.oidc.jwksUrl)) : undefined;
    this.devKey =
      this.auth.devTokens && this.auth.devSecret
        ? new TextEncoder().encode(this.auth.devSecret)
        : undefined;
  }

  async verify(token: string): Promise<Principal> {
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
        }));
      } else if (this.auth.oidc && this.jwks && issuer === this.auth.oidc.issuer) {
        ({ payload } = await jwtVerify(token, this.jwks, {
          issuer: this.auth.oidc.issuer,
          audience: this.auth.oidc.audience,
          algorithms: OIDC_ALGORITHMS,
          clockTolerance: 30,
        }));
      } else {
        throw unauthenticated('The bearer token is from an issuer leo does not trust.');
      }
    } catch (error) {
      if (error instanceof DomainError) throw error;
      if (error instanceof joseErrors.JWTExpired)
        throw unauthenticated('The bearer token has expired.');
      if (error instanceof joseErrors.JOSEError) {
        throw unauthenticated(`The bearer token was refused (${error.code}).`);
      }
      throw error;
    }
    return this.toPrincipal(payload);
  }

  private toPrincipal(payload: JWTPayload): Principal {
    const subject = payload.sub;
    if (typeof subject !== 'string' || subject.length === 0) {
      throw unauthenticated('The bearer token has no subject.');
    }
    const claimed = payload[this.auth.claims.roles];
    const roles = (Array.isArray(claimed) ? claimed : [claimed]).filter(
      (r): r is PrincipalRole =>
        typeof r === 'string' && (PRINCIPAL_ROLES as readonly string[]).includes(r),
    );
    // A token speaks for one kind of caller; one carrying several is refused rather than guessed.
    if (roles.length !== 1) {
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
