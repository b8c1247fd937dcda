import { Injectable, type BeforeApplicationShutdown } from '@nestjs/common';

/** Knows when shutdown has begun, so readiness fails first and load balancers stop sending. */
@Injectable()
export class LifecycleState implements BeforeApplicationShutdown {
  private draining = false;

  get isDraining(): boolean {
    return this.draining;
  }

  beforeApplicationShutdown(): void {
    this.draining = true;
  }
}
