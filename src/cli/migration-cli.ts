import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DataSource } from 'typeorm';
import { APP_ENTITIES } from '../app.entities.js';
import { ConfigError, loadConfig } from '../config/config.schema.js';
import { databaseOptions } from '../database/database.options.js';
import { revertLastMigrationLocked, runMigrationsLocked } from '../database/migrate.js';
import { startLocalInfrastructure } from '../infra/local-infrastructure.js';

/**
 * `npm run migration:run | migration:revert | migration:generate`. An entry point like main.ts,
 * so it lives outside database/: it composes configuration, the embedded infrastructure, the
 * database's runner and every feature's entities (src/app.entities.ts).
 */

const USAGE = 'usage: npm run migration:run | migration:revert | migration:generate -- <Name>';

/** Writes a migration from the difference between the entities and the migrated database. */
async function generate(options: ReturnType<typeof databaseOptions>, name: string): Promise<void> {
  if (!/^[A-Z][A-Za-z0-9]+$/.test(name))
    throw new Error(`the name must be PascalCase, e.g. AddCases (${USAGE})`);
  await runMigrationsLocked(options);
  const dataSource = new DataSource(options);
  await dataSource.initialize();
  try {
    const sql = await dataSource.driver.createSchemaBuilder().log();
    if (sql.upQueries.length === 0) {
      process.stdout.write('No changes: the entities match the migrated schema.\n');
      return;
    }
    const timestamp = Date.now();
    const className = `${name}${timestamp}`;
    const fileBase = `${timestamp}-${name.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase()}`;
    const render = (queries: typeof sql.upQueries): string =>
      queries
        .map((q) => {
          const params =
            q.parameters && q.parameters.length > 0 ? `, ${JSON.stringify(q.parameters)}` : '';
          return `    await queryRunner.query(${JSON.stringify(q.query)}${params});`;
        })
        .join('\n');
    const source = `import type { MigrationInterface, QueryRunner } from 'typeorm';

export class ${className} implements MigrationInterface {
  name = '${className}';

  async up(queryRunner: QueryRunner): Promise<void> {
${render(sql.upQueries)}
  }

  async down(queryRunner: QueryRunner): Promise<void> {
${render([...sql.downQueries].reverse())}
  }
}
`;
    const dir = path.resolve('src/database/migrations');
    await writeFile(path.join(dir, `${fileBase}.ts`), source);
    const indexFile = path.join(dir, 'index.ts');
    let index = await readFile(indexFile, 'utf8');
    index = index.replace(
      "import type { MigrationInterface } from 'typeorm';",
      `import type { MigrationInterface } from 'typeorm';\nimport { ${className} } from './${fileBase}.js';`,
    );
    index = index.replace(
      /export const MIGRATIONS: MigrationClass\[\] = \[([^\]]*)\];/,
      (_all, list: string) => {
        const items = list
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        return `export const MIGRATIONS: MigrationClass[] = [${[...items, className].join(', ')}];`;
      },
    );
    await writeFile(indexFile, index);
    process.stdout.write(
      `Wrote src/database/migrations/${fileBase}.ts; review it, then build and run it.\n`,
    );
  } finally {
    await dataSource.destroy();
  }
}

async function main(): Promise<void> {
  const [command, name] = process.argv.slice(2);
  if (!['run', 'revert', 'generate'].includes(command ?? '') || (command === 'generate' && !name)) {
    throw new Error(USAGE);
  }
  const config = loadConfig(process.env);
  const infra = await startLocalInfrastructure(config, (m) => process.stderr.write(`${m}\n`), {
    redis: false,
  });
  try {
    const options = databaseOptions(infra.config, APP_ENTITIES, {
      applicationName: 'leo-migrations',
    });
    switch (command) {
      case 'run': {
        const report = await runMigrationsLocked(options);
        process.stdout.write(
          report.applied.length
            ? `Applied: ${report.applied.join(', ')}\n`
            : 'No pending migrations.\n',
        );
        break;
      }
      case 'revert':
        await revertLastMigrationLocked(options);
        process.stdout.write('Reverted the last migration.\n');
        break;
      case 'generate':
        if (!name) throw new Error(USAGE);
        await generate(options, name);
        break;
      default:
        throw new Error(USAGE);
    }
  } finally {
    await infra.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `${error instanceof ConfigError || error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exitCode = 1;
});
