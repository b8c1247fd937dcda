import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';

/** One credential as leo keeps it: never the password, only its SHA-256. */
export interface CredentialRow {
  id: string;
  agency: string;
  username: string;
  passwordSha256: string;
  label: string | null;
  issuedAt: Date;
  issuedBy: string;
  revokedAt: Date | null;
  revokedBy: string | null;
}

interface Raw {
  id: string;
  agency: string;
  username: string;
  password_sha256: string;
  label: string | null;
  issued_at: Date;
  issued_by: string;
  revoked_at: Date | null;
  revoked_by: string | null;
}

const COLUMNS =
  'id, agency, username, password_sha256, label, issued_at, issued_by, revoked_at, revoked_by';

const toRow = (r: Raw): CredentialRow => ({
  id: r.id,
  agency: r.agency,
  username: r.username,
  passwordSha256: r.password_sha256,
  label: r.label,
  issuedAt: r.issued_at,
  issuedBy: r.issued_by,
  revokedAt: r.revoked_at,
  revokedBy: r.revoked_by,
});

/**
 * A fixed key for pg_advisory_xact_lock: every change to the agencies' Redis users (issue, revoke,
 * the periodic re-application) holds it, so that replicas never interleave them (a re-application
 * that read a credential before its revocation cannot create its user again after it).
 */
const ACL_LOCK_KEY = 7_746_215_390_118_221;
/** How long a change waits for that lock before it gives up (Postgres' lock_timeout). */
const LOCK_WAIT = '10s';

/** The agency credentials table (migration AgencyCredentials). */
@Injectable()
export class AgencyCredentialsRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * Runs `work` in a transaction holding the lock on the agencies' Redis users, waiting at most
   * LOCK_WAIT for it (a Redis that hangs under another holder must not hold every caller).
   */
  locked<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.dataSource.transaction(async (manager) => {
      await manager.query(`SET LOCAL lock_timeout = '${LOCK_WAIT}'`);
      await manager.query('SELECT pg_advisory_xact_lock($1)', [ACL_LOCK_KEY]);
      return work(manager);
    });
  }

  /** As `locked`, or nothing when another holds the lock (the periodic re-application). */
  lockedIfFree(work: (manager: EntityManager) => Promise<void>): Promise<void> {
    return this.dataSource.transaction(async (manager) => {
      const [got] = await manager.query<Array<{ got: boolean }>>(
        'SELECT pg_try_advisory_xact_lock($1) AS got',
        [ACL_LOCK_KEY],
      );
      if (got?.got) await work(manager);
    });
  }

  async insert(
    manager: EntityManager,
    row: Omit<CredentialRow, 'issuedAt' | 'revokedAt' | 'revokedBy'>,
  ): Promise<CredentialRow> {
    const rows = await manager.query<Raw[]>(
      `INSERT INTO agency_credentials (id, agency, username, password_sha256, label, issued_by)
       VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${COLUMNS}`,
      [row.id, row.agency, row.username, row.passwordSha256, row.label, row.issuedBy],
    );
    const [inserted] = rows;
    if (!inserted) throw new Error('the credential was not inserted');
    return toRow(inserted);
  }

  async list(agency?: string): Promise<CredentialRow[]> {
    const rows = await this.dataSource.query<Raw[]>(
      `SELECT ${COLUMNS} FROM agency_credentials
       WHERE $1::text IS NULL OR agency = $1 ORDER BY agency, issued_at, id`,
      [agency ?? null],
    );
    return rows.map(toRow);
  }

  async active(manager: EntityManager): Promise<CredentialRow[]> {
    const rows = await manager.query<Raw[]>(
      `SELECT ${COLUMNS} FROM agency_credentials WHERE revoked_at IS NULL ORDER BY id`,
    );
    return rows.map(toRow);
  }

  async byId(manager: EntityManager | undefined, id: string): Promise<CredentialRow | undefined> {
    const rows = await (manager ?? this.dataSource).query<Raw[]>(
      `SELECT ${COLUMNS} FROM agency_credentials WHERE id = $1`,
      [id],
    );
    const [row] = rows;
    return row ? toRow(row) : undefined;
  }

  /** The credential with this Redis user name, revoked or not. */
  async byUsername(username: string): Promise<CredentialRow | undefined> {
    const rows = await this.dataSource.query<Raw[]>(
      `SELECT ${COLUMNS} FROM agency_credentials WHERE username = $1`,
      [username],
    );
    const [row] = rows;
    return row ? toRow(row) : undefined;
  }

  /** Revokes credential `id` if it is not yet; the row as it stands after. */
  async revoke(manager: EntityManager, id: string, by: string): Promise<CredentialRow | undefined> {
    await manager.query(
      `UPDATE agency_credentials SET revoked_at = now(), revoked_by = $2
       WHERE id = $1 AND revoked_at IS NULL`,
      [id, by],
    );
    return this.byId(manager, id);
  }
}
