import { type CanActivate, type ExecutionContext, Injectable, Optional } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { DomainError } from '../common/domain-error.js';
import { ACCESS_METADATA, type AccessRule } from './access.decorator.js';
import { AgencyCredentialCheck, basicCredentials } from './agency-credential-check.js';
import { bearerToken } from './bearer-token.js';
import type { AuthenticatedRequest } from './current-principal.decorator.js';
import type { Principal } from './principal.js';
import { TokenVerifier } from './token-verifier.service.js';

/**
 * The global guard: a route is open only as far as it declares. No declaration means nobody
 * (and RouteAccessAudit stops start-up before such a route can be served).
 */
@Injectable()
export class AccessGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly tokens: TokenVerifier,
    @Optional() private readonly agencies?: AgencyCredentialCheck,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const rule = this.reflector.getAllAndOverride<AccessRule | undefined>(ACCESS_METADATA, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (!rule) {
      throw new DomainError('forbidden', 'route-not-declared', 'This route is closed.');
    }
    if (rule.kind === 'public') return true;

    const request = context.switchToHttp().getRequest<Request & AuthenticatedRequest>();
    const basic = basicCredentials(request.headers.authorization);
    if (basic) {
      request.principal = await this.agencyByCredential(rule.roles, basic);
      return true;
    }
    const token = bearerToken(request.headers.authorization);
    if (!token) {
      throw new DomainError(
        'unauthenticated',
        'missing-token',
        'Sign in: this route needs a bearer token.',
      );
    }
    const principal = await this.tokens.verify(token);
    if (!rule.roles.includes(principal.role)) {
      throw new DomainError(
        'forbidden',
        'role-not-allowed',
        `This route is for ${rule.roles.join(' or ')}; the caller is ${principal.role === 'admin' ? 'an' : 'a'} ${principal.role}.`,
      );
    }
    request.principal = principal;
    return true;
  }

  /**
   * An agency's adapter calling with the credential leo issued it (decision 0022): the agency is
   * the credential's. Only agency routes take it, and a revoked or unknown one is refused.
   */
  private async agencyByCredential(
    roles: readonly Principal['role'][],
    { username, password }: { username: string; password: string },
  ): Promise<Principal> {
    if (!roles.includes('agency')) {
      throw new DomainError(
        'unauthenticated',
        'basic-credentials-not-accepted',
        "An agency credential opens an agency's routes only; this route needs a bearer token.",
      );
    }
    const agency = this.agencies ? await this.agencies.agencyOf(username, password) : undefined;
    if (agency === undefined) {
      throw new DomainError(
        'unauthenticated',
        'invalid-credentials',
        'The agency credential was refused (unknown, revoked, or a wrong password).',
      );
    }
    return { role: 'agency', subject: username, agency };
  }
}
