import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import {
  plan,
  validate,
  withDefaults,
  type Catalogue,
  type LifeEventDefinition,
  type StepState,
} from '#workflow';
import { DEFAULT_SEED_DIR, readCatalogueFiles } from '../definitions/catalogue-seed.service.js';

const USAGE = `usage:
  npm run leo -- validate <file>... [--config <dir>]
      prints every problem as file:path: code: message; exits 1 on errors
  npm run leo -- plan <file> [--facts <json>] [--states <json>] [--config <dir>]
      prints the plan: which steps are ready, waiting, skipped or blocked, and what is missing`;

/** Paths are relative to where `npm run` was called from, not to the package. */
const fromCaller = (file: string): string =>
  path.resolve(process.env.INIT_CWD ?? process.cwd(), file);

async function loadCatalogue(dir: string): Promise<Catalogue> {
  const { facts, agencies, problems } = await readCatalogueFiles(dir);
  if (problems.length > 0) {
    throw new Error(`The catalogue in ${dir} has problems:\n${problems.join('\n')}`);
  }
  return {
    facts: new Map(facts.map((f) => [f.key, f])),
    agencies: new Map(agencies.map((a) => [a.code, a])),
  };
}

async function readDefinition(file: string): Promise<unknown> {
  return parseYaml(await readFile(file, 'utf8')) as unknown;
}

function parseJsonOption(name: string, text: string | undefined): Record<string, unknown> {
  if (text === undefined) return {};
  const value = JSON.parse(text) as unknown;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Error(`--${name} must be a JSON object`);
  return value as Record<string, unknown>;
}

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      facts: { type: 'string' },
      states: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...files] = positionals;
  if (values.help || !command || files.length === 0) {
    process.stderr.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const catalogue = await loadCatalogue(
    values.config ? fromCaller(values.config) : DEFAULT_SEED_DIR,
  );

  if (command === 'validate') {
    let errors = 0;
    for (const file of files) {
      const shown = path.relative(process.env.INIT_CWD ?? process.cwd(), fromCaller(file)) || file;
      let definition: unknown;
      try {
        definition = await readDefinition(fromCaller(file));
      } catch (error) {
        process.stdout.write(
          `${shown}:: syntax: ${error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error)}\n`,
        );
        errors += 1;
        continue;
      }
      for (const d of validate(definition, catalogue)) {
        if (d.severity === 'error') errors += 1;
        process.stdout.write(
          `${shown}:${d.path}: ${d.severity === 'warning' ? 'warning: ' : ''}${d.code}: ${d.message}\n`,
        );
      }
    }
    return errors > 0 ? 1 : 0;
  }

  if (command === 'plan') {
    if (files.length !== 1) throw new Error('plan takes one file');
    const definition = (await readDefinition(fromCaller(files[0] ?? ''))) as LifeEventDefinition;
    const errors = validate(definition, catalogue).filter((d) => d.severity === 'error');
    if (errors.length > 0) {
      for (const d of errors)
        process.stdout.write(`${files[0] ?? ''}:${d.path}: ${d.code}: ${d.message}\n`);
      return 1;
    }
    const result = plan(
      withDefaults(definition),
      parseJsonOption('facts', values.facts),
      parseJsonOption('states', values.states) as Record<string, StepState>,
      catalogue,
    );
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  }

  process.stderr.write(`unknown command ${command}\n${USAGE}\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  },
);
