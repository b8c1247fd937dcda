import 'reflect-metadata';
import { APP_ENTITIES } from './app.entities.js';
import { ConfigError, loadConfig, type AppConfig } from './config/config.schema.js';
import { runMigrationsLocked } from './database/migrate.js';
import { databaseOptions } from './database/database.options.js';
import { createApp } from './http/create-app.js';
import { LifecycleState } from './health/lifecycle.state.js';
import {
  startLocalInfrastructure,
  type LocalInfrastructure,
} from './infra/local-infrastructure.js';
import { createRootLogger } from './observability/logging.js';

/**
 * Boots leo in its role: validate configuration, start embedded infrastructure when no URLs
 * are given, migrate under an advisory lock, then serve. On SIGINT/SIGTERM it stops taking
 * work, drains, closes pools and only then stops what it started. A second signal exits at once.
 */
async function main(): Promise<void> {
  let config: AppConfig;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(
        `leo cannot start. ${error.message}\nSee the configuration reference in README.md.\n`,
      );
      process.exit(1);
    }
    throw error;
  }
  const log = createRootLogger(config.logLevel, config.role);
  const startedAt = performance.now();

  let shutdown: ((signal: NodeJS.Signals) => Promise<void>) | undefined;
  let signalledAt: number | undefined;
  let stopInfra = (): Promise<void> => Promise.resolve();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalledAt !== undefined) {
      // `npm start` forwards the terminal's Ctrl-C, so one key press arrives twice: only a
      // second press, a moment later, means "exit now".
      if (Date.now() - signalledAt < 1_000) return;
      log.warn({ signal }, 'second signal: exiting at once');
      process.exit(130);
    }
    signalledAt = Date.now();
    if (shutdown) {
      void shutdown(signal);
    } else {
      log.info({ signal }, 'signal during start-up: stopping');
      void stopInfra().finally(() => process.exit(130));
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let infra: LocalInfrastructure;
  try {
    infra = await startLocalInfrastructure(config, (msg) => {
      log.info(msg);
    });
  } catch (error) {
    log.error(
      { err: error },
      error instanceof Error ? error.message : 'could not start embedded services',
    );
    process.exit(1);
  }
  stopInfra = () =>
    infra.stop().catch((error: unknown) => {
      log.error({ err: error }, 'stopping embedded services failed');
    });

  try {
    const report = await runMigrationsLocked(
      databaseOptions(infra.config, APP_ENTITIES, { applicationName: 'leo-migrations' }),
    );
    if (report.applied.length > 0) log.info({ applied: report.applied }, 'migrations applied');

    const app = await createApp(infra.config, log);
    await app.listen(infra.config.http.port, infra.config.http.host);
    const url = (await app.getUrl())
      .replace('[::1]', 'localhost')
      .replace('127.0.0.1', 'localhost');
    log.info(
      {
        url,
        docs: `${url}/docs`,
        embedded: infra.started,
        devTokens: infra.config.auth.devTokens,
        startupMs: Math.round(performance.now() - startedAt),
      },
      `leo is ready on ${url} (API docs: ${url}/docs)`,
    );
    if (infra.started.includes('redis')) {
      // How an agency's adapter attaches to this leo (the password is in the credential, issued
      // once; never Redis' own).
      const redis = new URL(infra.config.redis.url);
      log.info(
        { redis: `${redis.hostname}:${redis.port}`, prefix: infra.config.queue.prefix },
        `to attach an agency's adapter: issue it a credential (POST ${url}/v1/admin/agencies/{code}/credentials, see the README), then connect it to Redis at ${redis.hostname}:${redis.port} with prefix ${infra.config.queue.prefix}`,
      );
    }

    shutdown = async (signal) => {
      log.info({ signal }, 'shutting down: no new work, draining in-flight work');
      const timer = setTimeout(() => {
        log.error({ timeoutMs: infra.config.shutdownTimeoutMs }, 'shutdown timed out; exiting');
        void stopInfra().finally(() => process.exit(1));
      }, infra.config.shutdownDrainMs + infra.config.shutdownTimeoutMs);
      timer.unref();
      if (infra.config.shutdownDrainMs > 0) {
        // Fail readiness first and keep serving a while, so load balancers stop sending before
        // the listener closes.
        app.get(LifecycleState).startDraining();
        await new Promise((resolve) => setTimeout(resolve, infra.config.shutdownDrainMs));
      }
      try {
        await app.close();
      } catch (error) {
        log.error({ err: error }, 'closing the application failed');
      }
      await stopInfra();
      clearTimeout(timer);
      log.info('stopped');
      process.exit(0);
    };
  } catch (error) {
    log.error({ err: error }, 'leo failed to start');
    await stopInfra();
    process.exit(1);
  }
}

void main();
