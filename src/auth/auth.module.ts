import { type DynamicModule, Module } from '@nestjs/common';
import { APP_GUARD, DiscoveryModule } from '@nestjs/core';
import { AccessGuard } from './access.guard.js';
import { DevTokenController } from './dev-token.controller.js';
import { MeController } from './me.controller.js';
import { RouteAccessAudit } from './route-access.audit.js';
import { TokenVerifier } from './token-verifier.service.js';

@Module({})
export class AuthModule {
  /**
   * The guard and audit apply in every role. `api` adds the session routes; the dev token route
   * exists only when dev tokens are enabled, so in production it is not merely closed but absent.
   */
  static forRoot(options: { api: boolean; devTokens: boolean }): DynamicModule {
    const controllers = options.api
      ? [MeController, ...(options.devTokens ? [DevTokenController] : [])]
      : [];
    return {
      module: AuthModule,
      global: true,
      imports: [DiscoveryModule],
      controllers,
      providers: [TokenVerifier, RouteAccessAudit, { provide: APP_GUARD, useClass: AccessGuard }],
      exports: [TokenVerifier],
    };
  }
}
