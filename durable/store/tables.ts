/**
 * Whether a user's object has its tables, and their creation (issue #12,
 * item 3). An object is made for any id somebody names — a friend request
 * asks "do you exist?" of the target's object — so the tables are created
 * lazily: an object that was never written to has none, reads as empty (no
 * such user, no edges, no devices) and stays without storage; the first
 * write (its own sign-in, an admin import, a lease…) runs the migrations.
 * An object that has tables runs the migrations it has not run yet as soon
 * as it is constructed, as before.
 */
import { MIGRATIONS } from "../schema";

export class Tables {
  private present: boolean;

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly sql: SqlStorage,
  ) {
    // One row read (PRAGMA user_version is not allowed: the version lives in its own table). Looking the table
    // up in sqlite_master instead read the whole catalogue, ≈ 14 rows on every wake (issue #11).
    const version = this.version();
    this.present = version !== null;
    if (this.present) this.migrate(version!);
  }

  /** The schema version; null: no tables (a never-written object). */
  private version(): number | null {
    try {
      return Number(this.sql.exec(`SELECT MAX(version) AS v FROM schema_version`).one().v ?? 0);
    } catch (e) {
      if (String(e).includes("no such table")) return null;
      throw e;
    }
  }

  /** The tables exist (reads may run; deletes and updates have something to touch). */
  get exist(): boolean {
    return this.present;
  }

  /** Before any insert: creates the tables (every migration) if this object has none yet. */
  create(): void {
    if (this.present) return;
    this.migrate(0);
    this.present = true;
  }

  private migrate(version: number): void {
    if (version >= MIGRATIONS.length) return;
    this.storage.transactionSync(() => {
      this.sql.exec(`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`);
      for (let v = version; v < MIGRATIONS.length; v++) for (const statement of MIGRATIONS[v]!) this.sql.exec(statement);
      this.sql.exec(`DELETE FROM schema_version`);
      this.sql.exec(`INSERT INTO schema_version (version) VALUES (?)`, MIGRATIONS.length);
    });
  }
}
