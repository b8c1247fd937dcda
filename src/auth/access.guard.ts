import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { DomainError } from '../common/domain-error.js';
import { ACCESS_METADATA, type AccessRule } from './access.decorator.js';
import { bearerToken } from './bearer-token.js';
import type { AuthenticatedRequest } from './current-principal.decorator.js';
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
}
