/**
 * Jest in native ESM mode (NestJS 12 is ESM-only; see docs/decisions/0001-toolchain.md).
 * Two projects: `unit` (pure, no I/O) and `e2e` (real Postgres and Redis, prepared once per run
 * by test/support/global-setup.ts).
 */
const shared = {
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^#agency-contract$': '<rootDir>/libs/agency-contract/src/index.ts',
    '^#case-machine$': '<rootDir>/libs/case-machine/src/index.ts',
    '^#facts$': '<rootDir>/libs/facts/src/index.ts',
    '^#mock-agencies$': '<rootDir>/libs/mock-agencies/src/index.ts',
    '^#workflow$': '<rootDir>/libs/workflow/src/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.json' }],
  },
  testEnvironment: 'node',
  // The SDK built as its package (npm run sdk:pack), and an example's installed dependencies
  // (which hold another copy of it): neither is a module of this project.
  modulePathIgnorePatterns: [
    '<rootDir>/libs/[^/]+/dist/',
    '<rootDir>/examples/[^/]+/node_modules/',
  ],
};

export default {
  // Real servers are started in some tests (embedded Postgres: initdb alone takes seconds).
  testTimeout: 60_000,
  projects: [
    {
      ...shared,
      displayName: 'unit',
      testMatch: [
        '<rootDir>/src/**/*.spec.ts',
        '<rootDir>/libs/**/*.spec.ts',
        '<rootDir>/test/**/*.spec.ts',
      ],
    },
    {
      ...shared,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
      // Global setup runs outside Jest's module system, so it runs the compiled code that
      // `npm test` builds first (pretest).
      globalSetup: '<rootDir>/dist/test/support/global-setup.js',
      globalTeardown: '<rootDir>/dist/test/support/global-teardown.js',
    },
  ],
};
