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

export default defineConfig(
  {
    ignores: ['dist/', 'node_modules/', 'coverage/', '.data/', 'bench/results/'],
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
);
