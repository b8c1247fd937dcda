import { type DynamicModule, Module } from '@nestjs/common';
import { AgencyCredentialCheck } from '../auth/agency-credential-check.js';
import { AclLogWatcher } from './acl-log-watcher.js';
import { AgencyCredentialsController } from './agency-credentials.controller.js';
import { AgencyCredentialsRepository } from './agency-credentials.repository.js';
import { AgencyCredentials } from './agency-credentials.service.js';
import { AgencyServiceController } from './agency-service.controller.js';
import { RedisAcl } from './redis-acl.js';

/**
 * Agencies as separate parties (decision 0022): their credentials, applied to Redis as users
 * limited to each agency's own keys, and what Redis refused them. The api and engine roles keep
 * the users applied (the agency catalogue comes from DefinitionsModule, which is global); the api
 * role serves the administrators' routes.
 */
@Module({})
export class AgencyAccessModule {
  static forRoot(options: { api: boolean }): DynamicModule {
    return {
      module: AgencyAccessModule,
      controllers: options.api ? [AgencyCredentialsController, AgencyServiceController] : [],
      // Global: the access guard (auth) checks agency credentials on REST through the port.
      global: true,
      providers: [
        AgencyCredentialsRepository,
        RedisAcl,
        AgencyCredentials,
        AclLogWatcher,
        { provide: AgencyCredentialCheck, useExisting: AgencyCredentials },
      ],
      exports: [AgencyCredentials, AgencyCredentialCheck],
    };
  }
}
