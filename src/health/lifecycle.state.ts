import { Injectable, type BeforeApplicationShutdown } from '@nestjs/common';

/** Knows when shutdown has begun, so readiness fails first and load balancers stop sending. */
@Injectable()
export class LifecycleState implements BeforeApplicationShutdown {
  private draining = false;

  get isDraining(): boolean {
    return this.draining;
  }

  /** Called by main.ts on a signal, a while before the application closes. */
  startDraining(): void {
    this.draining = true;
  }

  beforeApplicationShutdown(): void {
    this.draining = true;
  }
}
