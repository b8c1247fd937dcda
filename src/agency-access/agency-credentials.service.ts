import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import {
  agencyAclRules,
  agencyQueueName,
  agencyResultsStreamKey,
  agencyUserName,
  agencyUserScope,
} from '#agency-contract';
import { DomainError } from '../common/domain-error.js';
import { redisOptions } from '../queue/redis-connection.js';
import type { ResolvedConfig } from '../config/config.schema.js';
import { AgencyDirectory } from '../observability/monitored-queues.js';
import {
  AgencyCredentialsRepository,
  type CredentialRow,
} from './agency-credentials.repository.js';
import { RedisAcl } from './redis-acl.js';

/** A credential as an administrator sees it: never its password. */
export interface CredentialView {
  id: string;
  agency: string;
  username: string;
  label: string | null;
  issuedAt: Date;
  issuedBy: string;
  revokedAt: Date | null;
  revokedBy: string | null;
}

/** A credential just issued: its password, shown this once, and where it reaches. */
export interface IssuedCredential extends CredentialView {
  password: string;
  /** Redis as leo reaches it (another address may reach it from the adapter's network). */
  redis: { host: string; port: number; tls: boolean; db: number };
  prefix: string;
  queue: string;
  resultsStream: string;
}

/** How often every process applies the credentials to Redis again (a restarted Redis forgot them). */
const REAPPLY_MS = 30_000;

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

const view = (row: CredentialRow): CredentialView => ({
  id: row.id,
  agency: row.agency,
  username: row.username,
  label: row.label,
  issuedAt: row.issuedAt,
  issuedBy: row.issuedBy,
  revokedAt: row.revokedAt,
  revokedBy: row.revokedBy,
});

/**
 * Agency credentials (decision 0022): each a Redis user that can read and work only its agency's
 * queue and append only to its agency's results stream, so an adapter answers as the agency whose
 * credential it holds and as no other. leo keeps the password's SHA-256 only (Redis takes it so),
 * applies every credential to Redis when issued, removes it when revoked, and applies them all
 * again every REAPPLY_MS (Redis forgets users it was not configured with when it restarts), also
 * removing users of its naming (under its queue prefix) that no credential stands for. Every change holds one Postgres
 * advisory lock, so replicas never interleave them.
 */
@Injectable()
export class AgencyCredentials implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(AgencyCredentials.name);
  private readonly prefix: string;
  private readonly redisAddress: IssuedCredential['redis'];
  /** leo's Redis database: part of the users' scope, and the one database they may select. */
  private readonly db: number;
  private timer: NodeJS.Timeout | undefined;
  private applying: Promise<void> = Promise.resolve();
  private failedBefore = false;

  constructor(
    private readonly repository: AgencyCredentialsRepository,
    private readonly acl: RedisAcl,
    private readonly agencies: AgencyDirectory,
    config: ConfigService<ResolvedConfig, true>,
  ) {
    this.prefix = config.get('queue', { infer: true }).prefix;
    // As leo's own connections read REDIS_URL (redisOptions), not parsed a second way.
    const redis = redisOptions(config.get('redis', { infer: true }).url);
    this.db = redis.db ?? 0;
    this.redisAddress = {
      host: redis.host ?? 'localhost',
      port: redis.port ?? 6379,
      tls: redis.tls !== undefined,
      db: this.db,
    };
  }

  onApplicationBootstrap(): void {
    const round = (): void => {
      this.applying = this.applying.then(() => this.applyQuietly());
    };
    round();
    this.timer = setInterval(round, REAPPLY_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.applying;
  }

  /** Issues a credential for `agency` (which must be in the catalogue) and applies it to Redis. */
  async issue(agency: string, issuedBy: string, label?: string): Promise<IssuedCredential> {
    const codes = await this.agencies.agencyCodes();
    if (!codes.includes(agency)) {
      throw new DomainError(
        'not-found',
        'agency-not-found',
        `No agency ${agency} in the catalogue.`,
      );
    }
    const id = randomBytes(6).toString('hex');
    const password = randomBytes(32).toString('base64url');
    const username = agencyUserName(this.prefix, agency, id, this.db);
    const row = await this.repository.locked(async (manager) => {
      const inserted = await this.repository.insert(manager, {
        id,
        agency,
        username,
        passwordSha256: sha256(password),
        label: label ?? null,
        issuedBy,
      });
      // Inside the transaction: if Redis refuses, no credential is recorded.
      await this.redis(() =>
        this.acl.setUser(username, this.rules(agency, inserted.passwordSha256)),
      );
      return inserted;
    });
    this.logger.log({ agency, credentialId: id, issuedBy }, 'agency credential issued');
    return {
      ...view(row),
      password,
      redis: this.redisAddress,
      prefix: this.prefix,
      queue: agencyQueueName(agency),
      resultsStream: agencyResultsStreamKey(this.prefix, agency),
    };
  }

  /**
   * The agency of the standing credential `username`/`password` (an adapter calling leo's REST
   * API with it), or undefined. Read afresh each time: a revocation holds at once.
   */
  async agencyOf(username: string, password: string): Promise<string | undefined> {
    if (username.length > 100 || password.length > 200) return undefined;
    const row = await this.repository.byUsername(username);
    if (!row || row.revokedAt !== null) return undefined;
    const given = createHash('sha256').update(password).digest();
    const stored = Buffer.from(row.passwordSha256, 'hex');
    return stored.length === given.length && timingSafeEqual(given, stored)
      ? row.agency
      : undefined;
  }

  async list(agency?: string): Promise<CredentialView[]> {
    return (await this.repository.list(agency)).map(view);
  }

  /**
   * Revokes credential `id`: recorded, then its Redis user removed, which closes its
   * connections. With Redis away (or refusing leo the command) the revocation stands and the
   * answer is 503: the user is removed by the next application, and revoking again (a retry)
   * tries at once. Revoking a revoked credential changes nothing.
   */
  async revoke(id: string, revokedBy: string): Promise<CredentialView> {
    const redis = { removed: true };
    const row = await this.repository.locked(async (manager) => {
      const revoked = await this.repository.revoke(manager, id, revokedBy);
      if (!revoked) {
        throw new DomainError('not-found', 'credential-not-found', `No agency credential ${id}.`);
      }
      try {
        await this.acl.deleteUser(revoked.username);
      } catch (error) {
        redis.removed = false;
        this.logger.warn(
          { err: error, credentialId: id },
          'removing a revoked credential from Redis failed: the next application removes it',
        );
      }
      return revoked;
    });
    this.logger.log(
      { agency: row.agency, credentialId: id, revokedBy },
      'agency credential revoked',
    );
    if (!redis.removed) {
      throw new DomainError(
        'unavailable',
        'redis-acl-unavailable',
        'The credential is revoked, but Redis did not remove its user yet: it may still connect until leo reaches Redis again (within 30 s of that). Revoke again to retry now.',
      );
    }
    return view(row);
  }

  /**
   * Makes Redis' agency users exactly the credentials not revoked: each applied again (rules
   * reset), and every other user named like leo's agency users removed.
   */
  async apply(): Promise<void> {
    // Skipped while another process changes the users: it leaves them as they should be.
    await this.repository.lockedIfFree(async (manager) => {
      // Only this installation's users (named under its queue prefix): another leo on the same
      // Redis keeps its own.
      const scope = agencyUserScope(this.prefix, this.db);
      const present = (await this.acl.users()).filter((u) => u.startsWith(scope));
      const active = await this.repository.active(manager);
      for (const row of active) {
        await this.acl.setUser(row.username, this.rules(row.agency, row.passwordSha256));
      }
      const wanted = new Set(active.map((r) => r.username));
      for (const user of present) {
        if (!wanted.has(user)) {
          await this.acl.deleteUser(user);
          this.logger.warn(
            { user },
            'agency user without a standing credential removed from Redis',
          );
        }
      }
    });
  }

  private async applyQuietly(): Promise<void> {
    try {
      await this.apply();
      if (this.failedBefore) this.logger.log('agency credentials applied to Redis again');
      this.failedBefore = false;
    } catch (error) {
      // Once per outage, not every round.
      if (!this.failedBefore) {
        this.logger.warn({ err: error }, 'applying the agency credentials to Redis failed');
      }
      this.failedBefore = true;
    }
  }

  private rules(agency: string, passwordSha256: string): string[] {
    return agencyAclRules(this.prefix, agency, passwordSha256, this.db);
  }

  /** Redis' refusal or absence as a 503 the administrator can act on. */
  private async redis<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      this.logger.warn({ err: error }, 'Redis refused to manage an agency user');
      throw new DomainError(
        'unavailable',
        'redis-acl-unavailable',
        "Redis did not take the agency's user: it is unreachable, or leo's own Redis user may not manage users (ACL SETUSER).",
      );
    }
  }
}
