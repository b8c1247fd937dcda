import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU and memory accounting from Linux /proc.
 *
 * The CPU of a process tree is, for every live process in it, utime + stime (its own threads)
 * + cutime + cstime (children it has waited for). A child that exits is reaped by its parent
 * (the postmaster reaps every backend), so its time moves from the live sum into the parent's
 * cutime/cstime: the total never drops, and the difference of two samples is exactly the CPU the
 * tree used in between, including backends that started or ended in the window.
 */

let ticksPerSecond: number | undefined;

/** The kernel's clock ticks per second (USER_HZ), from getconf; 100 if that fails. */
export function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    } catch {
      ticksPerSecond = 100;
    }
    if (!Number.isFinite(ticksPerSecond) || ticksPerSecond <= 0) ticksPerSecond = 100;
  }
  return ticksPerSecond;
}

interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime + cutime + cstime, in clock ticks. */
  ticks: number;
}

/** Parses /proc/<pid>/stat; undefined when the process is gone. */
function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name is in parentheses and may itself hold spaces or parentheses.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // After the name: state(3) ppid(4) … utime(14) stime(15) cutime(16) cstime(17).
  const field = (n: number): number => Number(fields[n - 3]);
  return {
    pid,
    ppid: field(4),
    ticks: field(14) + field(15) + field(16) + field(17),
  };
}

function allStats(): ProcStat[] {
  const stats: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (stat) stats.push(stat);
  }
  return stats;
}

/** A named set of process trees whose CPU is counted together (e.g. "postgres"). */
export interface CpuGroup {
  name: string;
  /** The roots, read at every sample (a group may gain or lose roots between runs). */
  roots: () => readonly number[];
}

export interface CpuSample {
  /** Epoch milliseconds (Date.now()), comparable with Postgres timestamps on this machine. */
  at: number;
  /** CPU milliseconds used so far, per group. */
  ms: Record<string, number>;
  /** Per root pid, CPU milliseconds of its tree (for per-process figures). */
  byPid: Record<number, number>;
}

/** Samples the CPU of each group's trees: one pass over /proc. */
export function sampleCpu(groups: readonly CpuGroup[]): CpuSample {
  const stats = allStats();
  const children = new Map<number, ProcStat[]>();
  const byPid = new Map<number, ProcStat>();
  for (const stat of stats) {
    byPid.set(stat.pid, stat);
    const siblings = children.get(stat.ppid);
    if (siblings) siblings.push(stat);
    else children.set(stat.ppid, [stat]);
  }
  const msPerTick = 1000 / clockTicks();
  const treeTicks = (root: number): number => {
    const rootStat = byPid.get(root);
    if (!rootStat) return 0;
    let total = 0;
    const stack = [rootStat];
    const seen = new Set<number>();
    while (stack.length > 0) {
      const stat = stack.pop() as ProcStat;
      if (seen.has(stat.pid)) continue;
      seen.add(stat.pid);
      total += stat.ticks;
      for (const child of children.get(stat.pid) ?? []) stack.push(child);
    }
    return total;
  };
  const sample: CpuSample = { at: Date.now(), ms: {}, byPid: {} };
  for (const group of groups) {
    let ms = 0;
    for (const root of group.roots()) {
      const rootMs = treeTicks(root) * msPerTick;
      sample.byPid[root] = rootMs;
      ms += rootMs;
    }
    sample.ms[group.name] = ms;
  }
  return sample;
}

/** CPU used between two samples, per group and per root pid. */
export function cpuBetween(
  before: CpuSample,
  after: CpuSample,
): { ms: Record<string, number>; byPid: Record<number, number>; windowMs: number } {
  const ms: Record<string, number> = {};
  for (const [name, value] of Object.entries(after.ms)) ms[name] = value - (before.ms[name] ?? 0);
  const byPid: Record<number, number> = {};
  for (const [pid, value] of Object.entries(after.byPid)) {
    byPid[Number(pid)] = value - (before.byPid[Number(pid)] ?? 0);
  }
  return { ms, byPid, windowMs: after.at - before.at };
}

/** Memory of one process from /proc/<pid>/status, in MiB: peak (VmHWM) and current (VmRSS). */
export function memoryOf(pid: number): { peakRssMiB: number; rssMiB: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kib = (key: string): number =>
    Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { peakRssMiB: kib('VmHWM') / 1024, rssMiB: kib('VmRSS') / 1024 };
}
