import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';

/**
 * `node dist/bench/profile-summary.js DIR|FILE... [--cases N] [--top N]`: where the CPU time of
 * V8 CPU profiles (`npm run bench -- --profile DIR`) went, as self time per component (leo's own
 * folders, each npm package, Node's internals, the garbage collector) and per function, summed
 * over the files given (one per leo process). With `--cases`, also per case. V8 samples at
 * intervals of wall time, so on a busy machine a native call during which the thread waited for
 * a core (a socket write that woke Postgres, say) is charged that wait too: the sum exceeds the
 * process's CPU time as /proc counts it.
 */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** The component a function belongs to, from its script's URL. */
export function componentOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') {
    return functionName.startsWith('(') ? functionName : '(native code)';
  }
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const rest = url.slice(modules + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1] ?? ''}` : (rest[0] ?? url);
  }
  if (url.startsWith('node:')) {
    const parts = url.slice('node:'.length).split('/');
    const first = parts[0] === 'internal' ? (parts[1] ?? 'internal') : (parts[0] ?? '');
    return `node:${first.replace(/\.js$/, '')}`;
  }
  const own = /\/dist\/(src|libs|bench)\/([^/]+)/.exec(url);
  if (own) return `leo ${own[1] ?? ''}/${(own[2] ?? '').replace(/\.js$/, '')}`;
  return 'other';
}

export interface Summary {
  totalMs: number;
  components: Array<{ name: string; ms: number }>;
  functions: Array<{ name: string; where: string; component: string; ms: number }>;
}

export function summarise(profiles: CpuProfile[]): Summary {
  const components = new Map<string, number>();
  const functions = new Map<
    string,
    { name: string; where: string; component: string; ms: number }
  >();
  let totalMs = 0;
  for (const profile of profiles) {
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    profile.samples.forEach((id, i) => {
      const node = byId.get(id);
      const ms = (profile.timeDeltas[i] ?? 0) / 1000;
      if (!node || ms <= 0) return;
      const frame = node.callFrame;
      if (frame.functionName === '(idle)') return;
      totalMs += ms;
      const component = componentOf(frame);
      components.set(component, (components.get(component) ?? 0) + ms);
      const file = frame.url.replace(/^.*\/(node_modules|dist)\//, '');
      const where = frame.url === '' ? '' : `${file}:${frame.lineNumber + 1}`;
      const key = `${frame.functionName}@${where}`;
      const entry = functions.get(key) ?? {
        name: frame.functionName || '(anonymous)',
        where,
        component,
        ms: 0,
      };
      entry.ms += ms;
      functions.set(key, entry);
    });
  }
  return {
    totalMs,
    components: [...components].map(([name, ms]) => ({ name, ms })).sort((a, b) => b.ms - a.ms),
    functions: [...functions.values()].sort((a, b) => b.ms - a.ms),
  };
}

async function profileFiles(inputs: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const input of inputs) {
    if (input.endsWith('.cpuprofile')) files.push(input);
    else {
      for (const name of (await readdir(input)).sort()) {
        if (name.endsWith('.cpuprofile')) files.push(path.join(input, name));
      }
    }
  }
  return files;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { cases: { type: 'string' }, top: { type: 'string' } },
  });
  const files = await profileFiles(positionals);
  if (files.length === 0) {
    throw new Error('usage: profile-summary DIR|FILE.cpuprofile... [--cases N] [--top N]');
  }
  const cases = values.cases === undefined ? undefined : Number(values.cases);
  const top = values.top === undefined ? 30 : Number(values.top);
  const profiles = await Promise.all(
    files.map(async (f) => JSON.parse(await readFile(f, 'utf8')) as CpuProfile),
  );
  const summary = summarise(profiles);
  const perCase = (ms: number): string =>
    cases && cases > 0 ? `  ${(ms / cases).toFixed(2).padStart(7)} ms/case` : '';
  const pct = (ms: number): string => `${((100 * ms) / summary.totalMs).toFixed(1).padStart(5)}%`;
  const out: string[] = [
    `${files.length} profile(s), ${summary.totalMs.toFixed(0)} ms sampled, idle excluded (wall time: a call that waited for a core counts the wait)${perCase(summary.totalMs)}`,
    '',
    'self time by component',
  ];
  for (const c of summary.components.slice(0, top)) {
    out.push(`  ${pct(c.ms)} ${c.ms.toFixed(0).padStart(8)} ms${perCase(c.ms)}  ${c.name}`);
  }
  out.push('', 'self time by function');
  for (const f of summary.functions.slice(0, top)) {
    out.push(`  ${pct(f.ms)} ${f.ms.toFixed(0).padStart(8)} ms  ${f.name}  ${f.where}`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

if (
  process.argv[1] &&
  path.resolve(process.argv[1]).endsWith(path.join('bench', 'profile-summary.js'))
) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
