import { SetMetadata, applyDecorators } from '@nestjs/common';
import { ApiBearerAuth, ApiForbiddenResponse, ApiUnauthorizedResponse } from '@nestjs/swagger';
import type { PrincipalRole } from './principal.js';

export const ACCESS_METADATA = 'leo:access';

export type AccessRule = { kind: 'public' } | { kind: 'roles'; roles: readonly PrincipalRole[] };

/** Anyone may call this route, signed in or not (health, the dev token endpoint). */
export const Public = (): MethodDecorator & ClassDecorator =>
  SetMetadata(ACCESS_METADATA, { kind: 'public' } satisfies AccessRule);

/**
 * Only callers signed in with one of these roles. A route that declares neither this nor
 * `@Public()` is refused to everyone, and start-up fails listing it (RouteAccessAudit).
 */
export const Roles = (
  ...roles: [PrincipalRole, ...PrincipalRole[]]
): MethodDecorator & ClassDecorator =>
  applyDecorators(
    SetMetadata(ACCESS_METADATA, { kind: 'roles', roles } satisfies AccessRule),
    ApiBearerAuth(),
    ApiUnauthorizedResponse({ description: 'No valid bearer token.' }),
    ApiForbiddenResponse({ description: `Only for: ${roles.join(', ')}.` }),
  );
