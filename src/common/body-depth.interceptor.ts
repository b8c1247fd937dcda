import type { CallHandler, ExecutionContext, NestInterceptor } from '@nestjs/common';
import type { Observable } from 'rxjs';
import { assertNotTooDeep } from './params.js';

/**
 * Refuses a JSON body nested deeper than any real document (400 `too-deep`) before the
 * validation pipe's class-transformer walks it: it recurses, and a body a few thousand levels
 * deep overflowed its stack as a 500. Interceptors run before pipes, so every route is covered.
 */
export class BodyDepthInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() === 'http') {
      const body: unknown = context.switchToHttp().getRequest<{ body?: unknown }>().body;
      if (body !== null && typeof body === 'object') assertNotTooDeep(body);
    }
    return next.handle();
  }
}
