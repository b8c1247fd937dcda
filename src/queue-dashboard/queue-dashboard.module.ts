import { type MiddlewareConsumer, Module, type NestModule } from '@nestjs/common';
import { DashboardSessionsRepository } from './dashboard-sessions.repository.js';
import { QueueDashboardController } from './queue-dashboard.controller.js';
import { QueueDashboardMiddleware } from './queue-dashboard.middleware.js';

/**
 * The read-only queue dashboard (bull-board) at /admin/queues for administrators, in the roles
 * that serve the API. See docs/operating.md and docs/decisions/0009-metrics-and-queue-dashboard.md.
 */
@Module({
  controllers: [QueueDashboardController],
  providers: [DashboardSessionsRepository, QueueDashboardMiddleware],
})
export class QueueDashboardModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(QueueDashboardMiddleware).forRoutes('*');
  }
}
