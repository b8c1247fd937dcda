import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Injectable, Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectDataSource } from '@nestjs/typeorm';
import type pg from 'pg';
import { DataSource } from 'typeorm';
import type { ResolvedConfig } from '../config/config.schema.js';
import { preparedQuery } from '../database/prepared.js';
import { Metrics } from '../observability/metrics.js';
import { planLeases, type LeaseRow } from './partitioning.js';

/** What a holder of partitions is told when its set changes. */
export interface PartitionListener {
  /** Newly held: their inputs may now be taken (their cases are read from Postgres anew). */
  acquired?(partitions: readonly number[]): void;
  /**
   * About to be released (share shrank, or shutdown), while their lease still holds: stop
   * taking their inputs and finish those under way.
   */
  releasing?(partitions: readonly number[]): Promise<void>;
  /** Lost: another engine took them over, or the lease ran out unrenewed. Forget their cases. */
  lost?(partitions: readonly number[]): void;
}

/** The fence a change to a case of a held partition commits under. */
export interface OwnerFence {
  member: string;
  partition: number;
  epoch: number;
}

/**
 * The leases of an engine process on partitions of cases (docs/decisions/0020-partitions.md).
 * Every third of LEO_PARTITION_LEASE_MS a round: it renews what the process holds (a partition
 * whose row no longer names it was taken over: lost), counts the engines alive, releases what is
 * over its fair share and acquires free partitions up to it. Each acquisition moves the
 * partition's epoch on; a change commits only under the epoch it was decided with (OwnerFence),
 * so a process that lost a partition commits nothing to its cases (but for a write already under
 * way in the moment of a takeover, which the case's revision then catches: decision 0020). It also stops trusting its
 * leases before they can have run out (a fifth of the lease early), should it fail to renew.
 *
 * Any role asks `ownerOf` where a case's inputs go; only the engine role holds leases (`start`).
 */
@Injectable()
export class PartitionLeases implements BeforeApplicationShutdown {
  private readonly logger = new Logger(PartitionLeases.name);
  readonly member = `${hostname()}-${String(process.pid)}-${randomBytes(4).toString('hex')}`;
  readonly leaseMs: number;
  private readonly held = new Map<number, number>();
  /** Held, and being released: their work under way still commits, nothing new is taken. */
  private readonly releasing = new Set<number>();
  private inRound = false;
  private readonly listeners: PartitionListener[] = [];
  private owners = new Map<number, string>();
  private ownersReadAt = 0;
  private ownersReading: Promise<void> | undefined;
  /** Until when (this process' clock) the leases held are trusted. */
  private trustedUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private rounds: Promise<void> = Promise.resolve();
  private started = false;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly metrics: Metrics,
    config: ConfigService<ResolvedConfig, true>,
  ) {
    this.leaseMs = config.get('engine', { infer: true }).partitionLeaseMs;
  }

  listen(listener: PartitionListener): void {
    this.listeners.push(listener);
  }

  /** Joins the engines sharing partitions: registers, takes a share at once, then keeps it. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.round();
    this.timer = setInterval(
      () => {
        // A round slower than the interval is not queued behind: the next tick is skipped.
        if (this.inRound) return;
        this.inRound = true;
        this.rounds = this.round().finally(() => {
          this.inRound = false;
        });
      },
      Math.floor(this.leaseMs / 3),
    );
    this.timer.unref();
  }

  /** The epoch this process holds `partition` under, if it holds it and its lease is trusted. */
  fence(partition: number): OwnerFence | undefined {
    const epoch = this.held.get(partition);
    if (epoch === undefined || Date.now() >= this.trustedUntil) return undefined;
    return { member: this.member, partition, epoch };
  }

  /** Whether new inputs of `partition` are taken here (held, trusted, not being released). */
  holds(partition: number): boolean {
    return !this.releasing.has(partition) && this.fence(partition) !== undefined;
  }

  /** The partitions held, in order. */
  heldPartitions(): number[] {
    return [...this.held.keys()].sort((a, b) => a - b);
  }

  /**
   * The engine that holds `partition`, as last read (at most a third of a lease ago; `fresh`
   * reads again). Undefined while nobody does.
   */
  async ownerOf(partition: number, fresh = false): Promise<string | undefined> {
    if (this.fence(partition)) return this.member;
    if (fresh || Date.now() - this.ownersReadAt > this.leaseMs / 3) {
      this.ownersReading ??= this.readOwners().finally(() => {
        this.ownersReading = undefined;
      });
      await this.ownersReading;
    }
    return this.owners.get(partition);
  }

  /**
   * Checks with Postgres whether this process still holds `partition` under `epoch` (after a
   * change was refused). If not, the partition is lost: it is let go at once.
   */
  async verify(fence: OwnerFence): Promise<boolean> {
    const [row] = await this.query<{ owner: string | null; epoch: string }>(
      'lease.verify',
      'SELECT owner, epoch FROM engine_partitions WHERE partition = $1',
      [fence.partition],
    );
    const holds = row?.owner === this.member && Number(row.epoch) === fence.epoch;
    if (!holds && this.held.get(fence.partition) === fence.epoch) this.lose([fence.partition]);
    return holds;
  }

  /**
   * Releases every partition (after their work under way is done) and leaves: before the
   * database's connections close, so the others take over within a round, not a lease.
   */
  async beforeApplicationShutdown(): Promise<void> {
    if (!this.started) return;
    clearInterval(this.timer);
    await this.rounds;
    this.started = false;
    try {
      await this.release(this.heldPartitions());
      await this.query('lease.leave', 'DELETE FROM engine_members WHERE member = $1', [
        this.member,
      ]);
    } catch (error) {
      // Their leases run out on their own: others take over a little later.
      this.logger.warn({ err: error }, 'releasing partitions at shutdown failed');
    }
    this.metrics.leaseRenewed(undefined);
  }

  /** One round: renew, count the engines alive, release or acquire toward the fair share. */
  private async round(): Promise<void> {
    if (!this.started) return;
    try {
      const sent = Date.now();
      const ttl = String(this.leaseMs);
      await this.query(
        'lease.heartbeat',
        `INSERT INTO engine_members (member, role, heartbeat_until)
         VALUES ($1, 'engine', now() + make_interval(secs => $2::double precision / 1000))
         ON CONFLICT (member) DO UPDATE SET heartbeat_until = excluded.heartbeat_until`,
        [this.member, ttl],
      );
      // Only what this process knows it holds: a row that names it but that it let go of (a
      // release whose write failed) runs out and is taken again, not kept alive unserved.
      const renewed = await this.query<{ partition: number; epoch: string }>(
        'lease.renew',
        `UPDATE engine_partitions
            SET lease_until = now() + make_interval(secs => $2::double precision / 1000)
          WHERE owner = $1 AND partition = ANY($3::int[]) RETURNING partition, epoch`,
        [this.member, ttl, this.heldPartitions()],
      );
      const kept = new Map(renewed.map((r) => [r.partition, Number(r.epoch)]));
      const lost = [...this.held].filter(([p, epoch]) => kept.get(p) !== epoch).map(([p]) => p);
      if (lost.length > 0) this.lose(lost);
      // Trusted until a fifth of a lease before it can run out, counted from before the renewal.
      this.trustedUntil = sent + this.leaseMs - Math.ceil(this.leaseMs / 5);
      this.metrics.leaseRenewed(sent);

      const [{ members } = { members: '1' }] = await this.query<{ members: string }>(
        'lease.members',
        `SELECT count(*) AS members FROM engine_members WHERE heartbeat_until > now()`,
        [],
      );
      const rows = await this.readRows();
      this.setOwners(rows);
      const plan = planLeases({
        member: this.member,
        members: Number(members),
        held: this.heldPartitions(),
        rows,
      });
      if (plan.release.length > 0) await this.release(plan.release);
      if (plan.acquire.length > 0) await this.acquire(plan.acquire);
      // Engines gone for a while leave their row (they never release when killed).
      if (Math.random() < 0.05) {
        await this.query(
          'lease.forget',
          `DELETE FROM engine_members WHERE heartbeat_until < now() - interval '1 hour'`,
          [],
        );
      }
    } catch (error) {
      this.logger.warn({ err: error }, 'partition lease round failed');
    }
    this.metrics.partitionsOwned.set(this.held.size);
  }

  private async acquire(partitions: readonly number[]): Promise<void> {
    const rows = await this.query<{ partition: number; epoch: string }>(
      'lease.acquire',
      `UPDATE engine_partitions
          SET owner = $1, epoch = epoch + 1, acquired_at = now(),
              lease_until = now() + make_interval(secs => $3::double precision / 1000)
        WHERE partition = ANY($2::int[])
          AND (owner IS NULL OR owner = $1 OR lease_until IS NULL OR lease_until < now())
        RETURNING partition, epoch`,
      [this.member, partitions, String(this.leaseMs)],
    );
    if (rows.length === 0) return;
    const got = rows.map((r) => r.partition).sort((a, b) => a - b);
    for (const r of rows) {
      this.held.set(r.partition, Number(r.epoch));
      this.owners.set(r.partition, this.member);
    }
    this.metrics.partitionMoves.inc({ how: 'acquired' }, got.length);
    this.logger.log({ partitions: got, held: this.held.size }, 'partitions acquired');
    for (const l of this.listeners) l.acquired?.(got);
  }

  private async release(partitions: readonly number[]): Promise<void> {
    if (partitions.length === 0) return;
    // New inputs go elsewhere from now; work under way still commits under the lease: finish
    // it, then let go.
    for (const p of partitions) this.releasing.add(p);
    try {
      for (const l of this.listeners) await l.releasing?.(partitions);
      await this.query(
        'lease.release',
        `UPDATE engine_partitions SET owner = NULL, lease_until = NULL
          WHERE owner = $1 AND partition = ANY($2::int[])`,
        [this.member, partitions],
      );
    } finally {
      // Released, or (the write failed) left to run out unrenewed: not held either way.
      for (const p of partitions) {
        this.releasing.delete(p);
        this.held.delete(p);
        this.owners.delete(p);
      }
      for (const l of this.listeners) l.lost?.(partitions);
    }
    this.metrics.partitionMoves.inc({ how: 'released' }, partitions.length);
    this.logger.log({ partitions, held: this.held.size }, 'partitions released');
  }

  private lose(partitions: readonly number[]): void {
    for (const p of partitions) {
      this.held.delete(p);
      this.owners.delete(p);
    }
    this.metrics.partitionMoves.inc({ how: 'lost' }, partitions.length);
    this.logger.warn({ partitions, held: this.held.size }, 'partitions lost to another engine');
    for (const l of this.listeners) l.lost?.(partitions);
  }

  private async readOwners(): Promise<void> {
    this.setOwners(await this.readRows());
  }

  private setOwners(rows: readonly LeaseRow[]): void {
    this.owners = new Map(
      rows.flatMap((r) => (r.owner !== null && r.live ? [[r.partition, r.owner] as const] : [])),
    );
    this.ownersReadAt = Date.now();
  }

  private async readRows(): Promise<LeaseRow[]> {
    const rows = await this.query<{
      partition: number;
      owner: string | null;
      epoch: string;
      live: boolean;
    }>(
      'lease.rows',
      `SELECT partition, owner, epoch, coalesce(lease_until > now(), false) AS live
         FROM engine_partitions ORDER BY partition`,
      [],
    );
    return rows.map((r) => ({ ...r, epoch: Number(r.epoch) }));
  }

  private query<T extends pg.QueryResultRow>(
    name: string,
    text: string,
    values: unknown[],
  ): Promise<T[]> {
    return preparedQuery<T>(this.dataSource, name, text, values);
  }
}
