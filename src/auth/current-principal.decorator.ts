import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { DomainError } from '../common/domain-error.js';
import type { Principal } from './principal.js';

export interface AuthenticatedRequest {
  principal?: Principal;
}

/** The signed-in caller, as established by the AccessGuard. */
export const CurrentPrincipal = createParamDecorator(
  (_data: unknown, context: ExecutionContext): Principal => {
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    if (!request.principal) {
      throw new DomainError(
        'unauthenticated',
        'unauthenticated',
        'This route needs a signed-in caller.',
      );
    }
    return request.principal;
  },
);
