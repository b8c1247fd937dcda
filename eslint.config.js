// ESLint flat config. TypeScript is linted with typescript-eslint's type-checked rules; plain
// JavaScript config files get ESLint's recommended rules without type information. Formatting is
// Prettier's job (`npm run lint` runs both), so no stylistic rule sets are enabled here, which is
// why eslint-config-prettier is not needed.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

// The Node globals the plain JavaScript config files may use (the `globals` package is not a
// dependency, and these files only need a handful).
const nodeGlobals = {
  process: 'readonly',
  console: 'readonly',
  Buffer: 'readonly',
  URL: 'readonly',
  setTimeout: 'readonly',
  clearTimeout: 'readonly',
};

// Import direction between the folders of src/ and libs/, with the built-in no-restricted-imports
// (docs/decisions/0016-import-direction.md). Imports are relative, so a folder is matched by name
// after any number of `../`. Type-only imports count: they are dependencies too.
//
// - Layers below the features, each importing only the layers before it: config/ (nothing),
//   common/ (config), infra/ (config, common), database/ (config, common, infra). infra/ counts as
//   infrastructure: it starts Postgres and Redis for development and tests and knows no feature,
//   so database/ may use it. None of them imports a feature folder or the composition root
//   (app.module.ts, app.entities.ts, main.ts, http/), which imports everything.
// - observability/ imports no engine/, citizen/, definitions/ or adapters/: it learns of cases
//   from what it subscribes to, and is given what it needs through ports it owns
//   (AgencyDirectory). The engine may import observability's metrics registry, not the reverse.
// - engine/ imports no citizen/: the citizen API is built on the engine.
// - A lib imports nothing outside itself but other libs, through their `#name` aliases: no
//   relative path climbs out of libs/<name>/ (so nothing of src/ is reachable).
const FEATURES = [
  'definitions',
  'agency-access',
  'engine',
  'citizen',
  'adapters',
  'auth',
  'observability',
  'queue-dashboard',
  'health',
  'queue',
  'cli',
];
const COMPOSITION =
  'The composition root (app.module.ts, app.entities.ts, main.ts, http/) imports this layer, not the reverse.';

/** A pattern forbidding the named folders of src/, whatever the number of `../` before them. */
function folders(names, message) {
  return { regex: String.raw`^(\.\./)+(${names.join('|')})(/|$)`, message };
}

/** no-restricted-imports for one folder: files matched, patterns forbidden. */
function importDirection(files, patterns) {
  return { files, rules: { 'no-restricted-imports': ['error', { patterns }] } };
}

const NO_FEATURES =
  'Infrastructure layers (config, common, infra, database) import no feature folder.';

/** Feature folders and the composition root, forbidden to every infrastructure layer. */
const ABOVE_INFRASTRUCTURE = [
  folders(FEATURES, NO_FEATURES),
  folders(['http'], COMPOSITION),
  { regex: String.raw`^(\.\./)+(app\.[\w.-]+|main)(\.js)?$`, message: COMPOSITION },
];

export default defineConfig(
  {
    // libs/*/dist: a lib built on its own as a package (npm run sdk:pack);
    // examples/*/node_modules: an example's dependencies, installed to try it.
    ignores: [
      'dist/',
      'node_modules/',
      'coverage/',
      '.data/',
      'bench/results/',
      'libs/*/dist/',
      'examples/*/node_modules/',
    ],
  },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.strictTypeChecked],
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      // Nest's dependency injection reads constructor parameter types from decorator metadata
      // (emitDecoratorMetadata), which needs value imports of the injected classes; a type-only
      // import would erase them. Not in the strict set either; stated here so it stays off.
      '@typescript-eslint/consistent-type-imports': 'off',
      // Nest modules are decorated empty classes.
      '@typescript-eslint/no-extraneous-class': 'off',
      // As strict, except that numbers (ports, pids, exit codes, milliseconds) may be interpolated:
      // they stringify unambiguously, and `String(port)` everywhere would only add noise.
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        {
          allowAny: false,
          allowBoolean: false,
          allowNever: false,
          allowNullish: false,
          allowNumber: true,
          allowRegExp: false,
        },
      ],
      // Nest declares DTOs and option bags as classes (for Swagger and validation metadata) but
      // is used with plain object literals: handlers return `{ ... }` as a response DTO, and
      // `NestFactory.create(module, { bufferLogs: true })` takes a class-typed options object.
      // The rule flags exactly that idiom.
      '@typescript-eslint/no-unsafe-class-instance-assignment': 'off',
    },
  },
  {
    // Test code: supertest response bodies and Jest matchers are `any`-typed, and `expect(obj.method)`
    // patterns are common. Floating promises stay an error: an unawaited assertion is a silent pass.
    files: ['test/**/*.ts', '**/*.spec.ts', '**/*.e2e-spec.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/unbound-method': 'off',
      // Job handlers in tests must return a promise (`JobHandlers` says so) but often have
      // nothing to await; `async () => 'ok'` is the clearest way to write them.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [js.configs.recommended, tseslint.configs.disableTypeChecked],
    languageOptions: {
      sourceType: 'module',
      globals: nodeGlobals,
    },
  },
  importDirection(
    ['src/config/**/*.ts'],
    [
      ...ABOVE_INFRASTRUCTURE,
      folders(
        ['common', 'infra', 'database'],
        'config/ is the bottom layer: it imports nothing else of src/.',
      ),
    ],
  ),
  importDirection(
    ['src/common/**/*.ts'],
    [...ABOVE_INFRASTRUCTURE, folders(['infra', 'database'], 'common/ may import config/ only.')],
  ),
  importDirection(
    ['src/infra/**/*.ts'],
    [...ABOVE_INFRASTRUCTURE, folders(['database'], 'infra/ may import config/ and common/ only.')],
  ),
  importDirection(['src/database/**/*.ts'], ABOVE_INFRASTRUCTURE),
  importDirection(
    ['src/observability/**/*.ts'],
    [
      folders(
        ['engine', 'citizen', 'definitions', 'adapters'],
        'observability/ learns of cases from what it subscribes to, not by importing the features: code that reads the engine lives in engine/ and writes to the metrics registry; other inputs come through ports observability owns.',
      ),
    ],
  ),
  importDirection(
    ['src/engine/**/*.ts'],
    [folders(['citizen'], 'citizen/ is built on the engine, not the reverse.')],
  ),
  importDirection(
    ['libs/**/*.ts'],
    [
      {
        regex: String.raw`^(\.\./){2,}`,
        message:
          'A lib imports nothing outside itself (nothing of src/): other libs through their #name alias.',
      },
    ],
  ),
);
