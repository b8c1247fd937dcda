// `npm run sdk:pack -- <dir>`: builds the adapter SDK (libs/agency-contract) on its own and packs
// it as an npm tarball into <dir>, for an agency to `npm install <tarball>` in its adapter's
// directory (docs/adapters.md). Prints the tarball's absolute path as the last line of stdout, so
// that `TARBALL=$(npm run -s sdk:pack -- <dir>)` works; everything else goes to stderr.
//
// Plain JavaScript rather than TypeScript: it must run before anything is built.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const lib = path.join(root, 'libs/agency-contract');

const target = process.argv[2];
if (!target || target.startsWith('-')) {
  process.stderr.write('usage: npm run sdk:pack -- <directory to put the tarball in>\n');
  process.exit(2);
}
// `npm run` runs scripts in the package's root; a relative directory means the caller's own.
const destination = path.resolve(process.env.INIT_CWD ?? process.cwd(), target);
mkdirSync(destination, { recursive: true });

/** Runs a command, its output on stderr; exits with its status when it fails. */
function run(command, args, options = {}) {
  const result = spawnSync(command, args, {
    cwd: lib,
    stdio: ['ignore', options.capture ? 'pipe' : process.stderr, process.stderr],
    encoding: 'utf8',
  });
  if (result.error) {
    process.stderr.write(`sdk:pack: ${command} could not run: ${result.error.message}\n`);
    process.exit(1);
  }
  if (result.status !== 0) {
    process.stderr.write(`sdk:pack: ${[command, ...args].join(' ')} failed (${result.status})\n`);
    process.exit(result.status ?? 1);
  }
  return result.stdout ?? '';
}

// A clean build: nothing left in dist/ from a source file that is gone.
rmSync(path.join(lib, 'dist'), { recursive: true, force: true });
run(process.execPath, [
  path.join(root, 'node_modules/typescript/bin/tsc'),
  '-p',
  'tsconfig.build.json',
]);

// npm itself, as the one running this script (npm_execpath), else the npm on PATH. The build is
// done: --ignore-scripts skips the package's prepack, which would build it a second time.
const npm = process.env.npm_execpath;
const packArgs = ['pack', '--json', '--ignore-scripts', '--pack-destination', destination];
const output = npm
  ? run(process.execPath, [npm, ...packArgs], { capture: true })
  : run(process.platform === 'win32' ? 'npm.cmd' : 'npm', packArgs, { capture: true });
const [packed] = JSON.parse(output);
if (!packed?.filename) {
  process.stderr.write(`sdk:pack: npm pack did not say what it wrote:\n${output}\n`);
  process.exit(1);
}
process.stderr.write(
  `packed ${packed.name}@${packed.version}: ${packed.entryCount} files, ${packed.size} bytes\n`,
);
process.stdout.write(`${path.join(destination, packed.filename)}\n`);
