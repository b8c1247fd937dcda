import { Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { PATH_METADATA, METHOD_METADATA } from '@nestjs/common/constants.js';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import { ACCESS_METADATA, type AccessRule } from './access.decorator.js';

/**
 * Fails start-up when a route declares neither `@Public()` nor `@Roles(...)`. The guard would
 * refuse such a route anyway; failing loudly at boot turns a silent 403 into a build-time fix.
 */
@Injectable()
export class RouteAccessAudit implements OnApplicationBootstrap {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
  ) {}

  undeclaredRoutes(): string[] {
    const missing: string[] = [];
    for (const wrapper of this.discovery.getControllers()) {
      const instance: unknown = wrapper.instance;
      const { metatype } = wrapper;
      if (!instance || !metatype) continue;
      const prototype = Object.getPrototypeOf(instance) as object;
      for (const name of this.scanner.getAllMethodNames(prototype)) {
        const handler = (prototype as Record<string, unknown>)[name];
        if (typeof handler !== 'function') continue;
        if (Reflect.getMetadata(METHOD_METADATA, handler) === undefined) continue; // not a route
        const rule = this.reflector.getAllAndOverride<AccessRule | undefined>(ACCESS_METADATA, [
          handler,
          metatype,
        ]);
        if (!rule) {
          const path = String(Reflect.getMetadata(PATH_METADATA, handler) ?? '');
          missing.push(`${metatype.name}.${name} (${path || '/'})`);
        }
      }
    }
    return missing;
  }

  onApplicationBootstrap(): void {
    const missing = this.undeclaredRoutes();
    if (missing.length > 0) {
      throw new Error(
        `Every route must declare who may call it (@Public() or @Roles(...)); these do not: ${missing.join(', ')}`,
      );
    }
  }
}
